// The directory's statements for deletion and retention (server/lifecycle/ decides, these carry it
// out): each party's deleted side, legal holds, removing a destroyed conversation's record, and
// erasing a person's personal data. Shared by both backends like directory-queries.ts.

import type { ConversationParty, DeletionRecord, LegalHold } from "./directory-types.ts";
import type { SqlRow } from "../sql/sql-runner.ts";

/** The email an erased person's row keeps: unique (the column is) and about nobody. */
export function erasedEmail(userId: string): string {
  return `erased+${userId}@erased.invalid`;
}

/** True when a person's row has been erased (what the deletion-ledger replay checks). */
export function isErasedEmail(userId: string, email: string): boolean {
  return email === erasedEmail(userId);
}

/** Party rows: the starting organisation, then the participant organisations. */
const partiesSql = `
  SELECT c.org_id, o.retention_days, d.deleted_at FROM conversation_records c
    JOIN organisations o ON o.id = c.org_id
    LEFT JOIN conversation_deleted_sides d ON d.conversation_id = c.id AND d.org_id = c.org_id
    WHERE c.id = ?
  UNION ALL
  SELECT p.org_id, o.retention_days, d.deleted_at FROM conversation_orgs p
    JOIN organisations o ON o.id = p.org_id
    LEFT JOIN conversation_deleted_sides d ON d.conversation_id = p.conversation_id AND d.org_id = p.org_id
    WHERE p.conversation_id = ?`;

export const LIFECYCLE_STATEMENTS = {
  /** Parameters: conversation, conversation. */
  parties: partiesSql,
  deletedSide: {
    /** Deleting twice keeps the first time and reason. */
    insert: `INSERT INTO conversation_deleted_sides (conversation_id, org_id, deleted_by, reason, deleted_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (conversation_id, org_id) DO NOTHING`,
    /** The guests a party invited (bound invitations) leave with it. Parameters: conversation, conversation, org. */
    removeGuests: `DELETE FROM conversation_people WHERE conversation_id = ? AND user_id IN
      (SELECT user_id FROM invitations WHERE conversation_id = ? AND invited_by_org = ? AND user_id IS NOT NULL)`,
    /** Parameters: now, conversation, org. */
    revokeInvitations: "UPDATE invitations SET revoked_at = ? WHERE conversation_id = ? AND invited_by_org = ? AND revoked_at IS NULL",
  },
  legalHold: {
    upsert: `INSERT INTO conversation_legal_holds (conversation_id, org_id, set_by, reason, set_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (conversation_id, org_id) DO UPDATE SET set_by = excluded.set_by, reason = excluded.reason, set_at = excluded.set_at`,
    delete: "DELETE FROM conversation_legal_holds WHERE conversation_id = ? AND org_id = ?",
    list: "SELECT * FROM conversation_legal_holds WHERE conversation_id = ? ORDER BY set_at, org_id",
  },
  /** Everything hanging off a conversation record, children first (foreign keys); each takes the conversation id. */
  removeConversation: [
    "DELETE FROM invitation_codes WHERE invitation_id IN (SELECT id FROM invitations WHERE conversation_id = ?)",
    "DELETE FROM invitations WHERE conversation_id = ?",
    "DELETE FROM conversation_people WHERE conversation_id = ?",
    "DELETE FROM conversation_orgs WHERE conversation_id = ?",
    "DELETE FROM conversation_deleted_sides WHERE conversation_id = ?",
    "DELETE FROM conversation_legal_holds WHERE conversation_id = ?",
    "DELETE FROM support_grants WHERE conversation_id = ?",
  ],
  removeConversationRecord: "DELETE FROM conversation_records WHERE id = ?",
  sharedLedger: {
    insert: "INSERT INTO deletion_ledger (subject, id, reason, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (subject, id) DO NOTHING",
    list: "SELECT subject, id, reason, recorded_at FROM deletion_ledger ORDER BY recorded_at, subject, id",
  },
  /** Parameters: after (exclusive), limit. */
  listConversationIds: "SELECT id FROM conversation_records WHERE id > ? ORDER BY id LIMIT ?",
  person: {
    countMembers: "SELECT COUNT(*) AS n FROM memberships WHERE org_id = ?",
    /** Parameters: pseudonymous email, user. Keeps the row (and its id, which audit entries name). */
    scrub: `UPDATE users SET email = ?, name = '', password_hash = NULL, totp_sealed = NULL, totp_enabled = FALSE, totp_last_step = NULL
      WHERE id = ?`,
    deleteRecoveryCodes: "DELETE FROM recovery_codes WHERE user_id = ?",
    deleteWebauthnCredentials: "DELETE FROM webauthn_credentials WHERE user_id = ?",
    deleteRefreshTokens: "DELETE FROM refresh_tokens WHERE user_id = ?",
    deleteMemberships: "DELETE FROM memberships WHERE user_id = ?",
    deleteConversationPeople: "DELETE FROM conversation_people WHERE user_id = ?",
    deleteApiKeys: "DELETE FROM api_keys WHERE created_by = ?",
    /** Membership invitations addressed to them go (nothing of history hangs off them). Parameters: old email. */
    deleteMemberInvitations: "DELETE FROM member_invitations WHERE email = ?",
    /** Sign-ups waiting for confirmation under the address (an attempt on an existing account included). */
    deletePendingSignups: "DELETE FROM pending_signups WHERE email = ?",
    /** Parameters: user, old email. */
    deleteInvitationCodes: `DELETE FROM invitation_codes WHERE invitation_id IN
      (SELECT id FROM invitations WHERE user_id = ? OR email = ?)`,
    /** Invitations to them keep their place in a conversation's history, addressed to nobody. Parameters: email, now, user, old email. */
    scrubInvitations: `UPDATE invitations SET email = ?, device_hash = NULL, revoked_at = COALESCE(revoked_at, ?)
      WHERE user_id = ? OR email = ?`,
  },
} as const;

export function partyFrom(row: SqlRow): ConversationParty {
  return {
    orgId: row.org_id as string,
    retentionDays: Number(row.retention_days),
    sideDeletedAt: row.deleted_at == null ? null : Number(row.deleted_at),
  };
}

export function legalHoldFrom(row: SqlRow): LegalHold {
  return {
    conversationId: row.conversation_id as string,
    orgId: row.org_id as string,
    setBy: row.set_by as string,
    reason: row.reason as string,
    setAt: Number(row.set_at),
  };
}

export function deletionRecordFrom(row: SqlRow): DeletionRecord {
  return {
    subject: row.subject as DeletionRecord["subject"],
    id: row.id as string,
    reason: row.reason as string,
    at: Number(row.recorded_at),
  };
}
