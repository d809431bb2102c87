// The directory's statements, written once for both backends with `?` placeholders (Postgres
// numbers them), the row shapes they return turned into plain directory types, and the decisions
// taken from those rows (who may do what). No I/O here; sql-directory.ts runs these.

import type { SqlDialect } from "../sql/sql-dialect.ts";
import type {
  AccessLevel,
  Accessor,
  ApiKeyRecord,
  ConversationRecord,
  ConversationState,
  InvitationRecord,
  MemberInvitation,
  MemberRole,
  Organisation,
  ParticipantRole,
  PendingSignup,
  SupportGrant,
  User,
} from "./directory-types.ts";
import type { SqlRow, SqlValue } from "../sql/sql-runner.ts";

/** The statements, with the dialect's holes filled. */
export function directoryStatements(d: SqlDialect) {
  return {
    organisation: {
      insert: "INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)",
      select: "SELECT * FROM organisations WHERE id = ?",
      listIds: "SELECT id FROM organisations ORDER BY id",
      /** Locks the organisation's row: membership changes of one organisation take turns (the last-owner rule). */
      lock: `SELECT id FROM organisations WHERE id = ?${d.lockRows}`,
      /** The row, locked until the transaction ends (read-modify-write of its settings). */
      selectForUpdate: `SELECT * FROM organisations WHERE id = ?${d.lockRows}`,
      update: "UPDATE organisations SET name = ?, require_2fa = ?, ip_allowlist = ?, retention_days = ?, require_security_key = ? WHERE id = ?",
    },
    user: {
      insert: "INSERT INTO users (id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
      select: "SELECT * FROM users WHERE id = ?",
      selectByEmail: "SELECT * FROM users WHERE email = ?",
      setPasswordHash: "UPDATE users SET password_hash = ? WHERE id = ?",
      setTotp: "UPDATE users SET totp_sealed = ?, totp_enabled = ?, totp_last_step = NULL WHERE id = ?",
      enableTotp: "UPDATE users SET totp_enabled = TRUE WHERE id = ? AND totp_sealed IS NOT NULL",
      /** Conditional, so of two concurrent uses of one step exactly one changes the row. */
      consumeTotpStep: "UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
    },
    webauthn: {
      insert: "INSERT INTO webauthn_credentials (id, user_id, name, public_key, counter, transports, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      listByUser: "SELECT * FROM webauthn_credentials WHERE user_id = ? ORDER BY created_at, id",
      select: "SELECT * FROM webauthn_credentials WHERE id = ?",
      /** Counters only move forward: a cloned key replaying an old counter changes nothing. */
      use: "UPDATE webauthn_credentials SET counter = ?, last_used_at = ? WHERE id = ? AND (counter < ? OR ? = 0)",
      rename: "UPDATE webauthn_credentials SET name = ? WHERE id = ? AND user_id = ?",
      remove: "DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?",
    },
    recoveryCode: {
      deleteAll: "DELETE FROM recovery_codes WHERE user_id = ?",
      insert: "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)",
      consume: "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
      countUnused: "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
      /** The person's row, locked until the transaction ends: issuers of a first set, and removers of the last factors, take turns. */
      lockOwner: `SELECT id FROM users WHERE id = ?${d.lockRows}`,
      /**
       * One statement, so it sees the factors as the transaction leaves them: the codes go only
       * when neither a security key nor an enabled authenticator app is left to fall back from.
       */
      deleteWithoutSecondFactor: `DELETE FROM recovery_codes WHERE user_id = ?
        AND NOT EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = ?)
        AND NOT EXISTS (SELECT 1 FROM users WHERE id = ? AND totp_enabled = TRUE)`,
    },
    membership: {
      /** Inserts as owner: the first member of a new organisation. */
      insertOwner: "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)",
      upsert: `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role`,
      selectRole: "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?",
      countOwners: "SELECT COUNT(*) AS n FROM memberships WHERE org_id = ? AND role = 'owner'",
      delete: "DELETE FROM memberships WHERE org_id = ? AND user_id = ?",
      listByUser: `SELECT m.org_id, o.name AS org_name, m.user_id, m.role
        FROM memberships m JOIN organisations o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY m.created_at, m.org_id`,
      listByOrg: `SELECT u.id, u.email, u.name, m.role
        FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? ORDER BY m.created_at, u.id`,
    },
    apiKey: {
      insert: "INSERT INTO api_keys (id, org_id, name, scopes, secret_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
      select: "SELECT * FROM api_keys WHERE id = ?",
      listByOrg: "SELECT * FROM api_keys WHERE org_id = ? ORDER BY created_at, id",
      revoke: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL",
      touch: "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    },
    conversation: {
      insert: `INSERT INTO conversation_records (id, org_id, title, external_ref, status, created_at, created_by)
        VALUES (?, ?, ?, ?, 'open', ?, ?)`,
      select: "SELECT * FROM conversation_records WHERE id = ?",
      /** Locks the record: deletions of one conversation's sides take turns. */
      lock: `SELECT id FROM conversation_records WHERE id = ?${d.lockRows}`,
      setStatus: "UPDATE conversation_records SET status = ? WHERE id = ?",
      /**
       * Everything an access decision needs, read in one statement (one snapshot, one round trip).
       * Parameters: org, user (null for API keys), org, user, org, conversation.
       */
      access: `SELECT c.org_id, c.status,
          (SELECT m.role FROM memberships m WHERE m.org_id = ? AND m.user_id = ?) AS member_role,
          (SELECT o.role FROM conversation_orgs o WHERE o.conversation_id = c.id AND o.org_id = ?) AS org_role,
          (SELECT p.role FROM conversation_people p WHERE p.conversation_id = c.id AND p.user_id = ?) AS person_role,
          (SELECT 1 FROM conversation_deleted_sides d WHERE d.conversation_id = c.id AND d.org_id = ?) AS side_deleted
        FROM conversation_records c WHERE c.id = ?`,
    },
    participant: {
      upsert: `INSERT INTO conversation_orgs (conversation_id, org_id, role, added_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (conversation_id, org_id) DO UPDATE SET role = excluded.role`,
      delete: "DELETE FROM conversation_orgs WHERE conversation_id = ? AND org_id = ?",
      list: `SELECT p.org_id, o.name, p.role FROM conversation_orgs p JOIN organisations o ON o.id = p.org_id
        WHERE p.conversation_id = ? ORDER BY p.added_at, p.org_id`,
    },
    person: {
      upsert: `INSERT INTO conversation_people (conversation_id, user_id, role, added_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role`,
      delete: "DELETE FROM conversation_people WHERE conversation_id = ? AND user_id = ?",
      list: `SELECT p.user_id, u.email, p.role FROM conversation_people p JOIN users u ON u.id = p.user_id
        WHERE p.conversation_id = ? ORDER BY p.added_at, p.user_id`,
    },
    invitation: {
      insert: `INSERT INTO invitations (id, token_hash, conversation_id, email, role, invited_by_org, invited_by, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      selectByTokenHash: "SELECT * FROM invitations WHERE token_hash = ?",
      select: "SELECT * FROM invitations WHERE id = ?",
      listByConversation: "SELECT * FROM invitations WHERE conversation_id = ? ORDER BY created_at, id",
      revoke: "UPDATE invitations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
      /** Conditional: of two concurrent first uses exactly one binds; it returns what the person is added as. */
      bind: "UPDATE invitations SET user_id = ?, device_hash = ? WHERE id = ? AND user_id IS NULL RETURNING conversation_id, role",
    },
    invitationCode: {
      /** The same code again (vanishingly unlikely) is renewed and unused. */
      upsert: `INSERT INTO invitation_codes (invitation_id, code_hash, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (invitation_id, code_hash) DO UPDATE SET expires_at = excluded.expires_at, used_at = NULL`,
      consume: "UPDATE invitation_codes SET used_at = ? WHERE invitation_id = ? AND code_hash = ? AND used_at IS NULL AND expires_at > ?",
    },
    memberInvitation: {
      insert: `INSERT INTO member_invitations (id, org_id, email, role, invited_by, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`,
      /** Pending: neither accepted nor revoked (expiry is the caller's clock). */
      listByOrg: "SELECT * FROM member_invitations WHERE org_id = ? AND accepted_at IS NULL AND revoked_at IS NULL ORDER BY created_at, id",
      /** Parameters: email, now. */
      listByEmail: `SELECT i.*, o.name AS org_name FROM member_invitations i JOIN organisations o ON o.id = i.org_id
        WHERE i.email = ? AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > ? ORDER BY i.created_at, i.id`,
      /** Only the inviting organisation's: another's id changes nothing, like a missing one. Parameters: now, id, org. */
      revoke: "UPDATE member_invitations SET revoked_at = ? WHERE id = ? AND org_id = ? AND accepted_at IS NULL AND revoked_at IS NULL",
      /** Parameters: now, id, email. */
      decline: "UPDATE member_invitations SET revoked_at = ? WHERE id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL",
      /**
       * Conditional: an invitation is accepted once, by the person it was addressed to, while live.
       * Parameters: now, user, id, email, now.
       */
      accept: `UPDATE member_invitations SET accepted_at = ?, accepted_by = ?
        WHERE id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?
        RETURNING org_id, role`,
      /** A person's membership starts as invited; an existing one is left as it is. */
      insertMember: `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (org_id, user_id) DO NOTHING`,
    },
    pendingSignup: {
      insert: `INSERT INTO pending_signups (token_hash, email, name, organisation, password_hash, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`,
      /** Expired sign-ups go as new ones arrive, so the table holds at most a day's worth. Parameter: now. */
      purgeExpired: "DELETE FROM pending_signups WHERE expires_at <= ?",
      /** Parameters: token hash, now. */
      selectLive: "SELECT * FROM pending_signups WHERE token_hash = ? AND expires_at > ?",
      /** Spends a live link: of two concurrent confirmations exactly one gets the row. Parameters: token hash, now. */
      spend: "DELETE FROM pending_signups WHERE token_hash = ? AND expires_at > ? RETURNING *",
    },
    refreshToken: {
      insert: `INSERT INTO refresh_tokens (token_hash, family_id, user_id, org_id, created_at, expires_at, conversation_scope)
        VALUES (?, ?, ?, ?, ?, ?, ?)`,
      /**
       * Spends a live token of a live family, or changes nothing. Conditional, so of two nodes
       * presenting one token at once exactly one gets its row back. Parameters: now, hash, now.
       */
      spend: `UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ?
        WHERE token_hash = ? AND rotated_at IS NULL AND expires_at > ?
          AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id)
        RETURNING family_id, user_id, org_id, conversation_scope`,
      select: `SELECT family_id, user_id, org_id, conversation_scope, rotated_at, expires_at, successor_hash, grace_used_at
        FROM refresh_tokens WHERE token_hash = ?`,
      /**
       * Takes a spent token's one retry (compare-and-set on its successor, so of two retries at
       * once exactly one changes the row). Parameters: now, next hash, hash, the successor it had.
       */
      takeGrace: `UPDATE refresh_tokens SET grace_used_at = ?, successor_hash = ?
        WHERE token_hash = ? AND grace_used_at IS NULL AND successor_hash = ?`,
      /**
       * Retires a successor nobody has used (the lost answer's token): spent, and without a grace
       * of its own, so whoever presents it later ends the family. Parameters: now, now, hash, now.
       */
      retireUnused: `UPDATE refresh_tokens SET rotated_at = ?, grace_used_at = ?
        WHERE token_hash = ? AND rotated_at IS NULL AND expires_at > ?`,
      familiesOfUser: "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = ? ORDER BY family_id",
    },
    revokedFamily: {
      insert: "INSERT INTO revoked_families (family_id, user_id, revoked_at, reason) VALUES (?, ?, ?, ?) ON CONFLICT (family_id) DO NOTHING",
      exists: "SELECT 1 AS revoked FROM revoked_families WHERE family_id = ?",
    },
    supportGrant: {
      insert: "INSERT INTO support_grants (id, operator, conversation_id, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      select: "SELECT * FROM support_grants WHERE id = ?",
      listByConversation: "SELECT * FROM support_grants WHERE conversation_id = ? ORDER BY granted_at, id",
      revoke: "UPDATE support_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    },
  } as const;
}

/** The statements of one dialect. */
export type DirectoryStatements = ReturnType<typeof directoryStatements>;

/**
 * The page of conversations an accessor may see (see Directory.listConversations), as one
 * statement: only the clauses the options need, so every variant can use its indexes.
 */
export function listConversationsQuery(
  accessor: Accessor,
  options: { before?: { createdAt: number; id: string }; limit: number; externalRef?: string },
): { sql: string; params: SqlValue[] } {
  const params: SqlValue[] = [accessor.orgId, accessor.orgId];
  let visible = "c.org_id = ? OR c.id IN (SELECT conversation_id FROM conversation_orgs WHERE org_id = ?)";
  const clauses: string[] = [];
  if (accessor.userId) {
    visible += " OR c.id IN (SELECT conversation_id FROM conversation_people WHERE user_id = ?)";
    params.push(accessor.userId);
  }
  clauses.push(`(${visible})`);
  // An organisation that deleted its side of a conversation no longer sees it (server/lifecycle/).
  clauses.push("NOT EXISTS (SELECT 1 FROM conversation_deleted_sides d WHERE d.conversation_id = c.id AND d.org_id = ?)");
  params.push(accessor.orgId);
  if (accessor.userId) {
    // A person acts for an organisation only while a member of it.
    clauses.push("EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = ? AND m.user_id = ?)");
    params.push(accessor.orgId, accessor.userId);
  }
  if (options.externalRef !== undefined) {
    clauses.push("c.external_ref = ?");
    params.push(options.externalRef);
  }
  if (options.before) {
    clauses.push("(c.created_at < ? OR (c.created_at = ? AND c.id < ?))");
    params.push(options.before.createdAt, options.before.createdAt, options.before.id);
  }
  params.push(options.limit);
  return {
    sql: `SELECT c.* FROM conversation_records c WHERE ${clauses.join(" AND ")} ORDER BY c.created_at DESC, c.id DESC LIMIT ?`,
    params,
  };
}

// ── decisions ──────────────────────────────────────────────────────────────────────────────────

/** Row shape of `conversation.access`. */
export interface AccessRow extends SqlRow {
  org_id: string;
  status: string;
  member_role: string | null;
  org_role: string | null;
  person_role: string | null;
  side_deleted: number | null;
}

/** The access an accessor has, from its `conversation.access` row (undefined: no such conversation). */
export function accessFromRow(row: AccessRow | undefined, accessor: Accessor): AccessLevel | null {
  if (!row) return null;
  if (row.side_deleted !== null) return null;
  if (accessor.userId && row.member_role === null) return null;
  let role: ParticipantRole | null = row.org_id === accessor.orgId ? "participant" : (row.org_role as ParticipantRole | null);
  // A person invited individually keeps that role, unless their organisation's is better.
  if (accessor.userId && role !== "participant" && row.person_role !== null) {
    if (role === null || row.person_role === "participant") role = row.person_role as ParticipantRole;
  }
  if (role === null) return null;
  if (row.status === "closed") return "observer";
  return role === "participant" ? "writer" : "observer";
}

/** Whether setting a member's role (`next`; null = removing them) would leave the organisation without an owner. */
export function removesLastOwner(current: MemberRole | null, next: MemberRole | null, owners: number): boolean {
  return current === "owner" && next !== "owner" && owners <= 1;
}

// ── rows to directory types ──────────────────────────────────────────────────────────────────

/** SQLite gives booleans back as 0/1, Postgres as true/false. */
function bool(value: unknown): boolean {
  return value === true || value === 1;
}

function bytes(value: unknown): Uint8Array | null {
  return value == null ? null : new Uint8Array(value as Uint8Array);
}

function optional<T>(value: unknown): T | null {
  return (value ?? null) as T | null;
}

export function organisationFrom(row: SqlRow): Organisation {
  return {
    id: row.id as string,
    name: row.name as string,
    createdAt: row.created_at as number,
    require2fa: bool(row.require_2fa),
    requireSecurityKey: bool(row.require_security_key),
    ipAllowlist: JSON.parse(row.ip_allowlist as string) as string[],
    retentionDays: Number(row.retention_days),
  };
}

export function userFrom(row: SqlRow): User {
  return {
    id: row.id as string,
    email: row.email as string,
    name: row.name as string,
    passwordHash: optional<string>(row.password_hash),
    totpSealed: bytes(row.totp_sealed),
    totpEnabled: bool(row.totp_enabled),
    totpLastStep: optional<number>(row.totp_last_step),
    createdAt: row.created_at as number,
  };
}

export function apiKeyFrom(row: SqlRow): ApiKeyRecord {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    name: row.name as string,
    scopes: JSON.parse(row.scopes as string) as string[],
    secretHash: row.secret_hash as string,
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
    lastUsedAt: optional<number>(row.last_used_at),
    revokedAt: optional<number>(row.revoked_at),
  };
}

export function conversationFrom(row: SqlRow): ConversationRecord {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    title: row.title as string,
    externalRef: optional<string>(row.external_ref),
    status: row.status as ConversationState,
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
  };
}

export function invitationFrom(row: SqlRow): InvitationRecord {
  return {
    id: row.id as string,
    conversationId: row.conversation_id as string,
    email: row.email as string,
    role: row.role as ParticipantRole,
    invitedByOrg: row.invited_by_org as string,
    invitedBy: row.invited_by as string,
    createdAt: row.created_at as number,
    expiresAt: row.expires_at as number,
    revokedAt: optional<number>(row.revoked_at),
    userId: optional<string>(row.user_id),
    deviceHash: optional<string>(row.device_hash),
  };
}

export function pendingSignupFrom(row: SqlRow): PendingSignup {
  return {
    email: String(row.email),
    name: String(row.name),
    organisation: String(row.organisation),
    passwordHash: String(row.password_hash),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

export function memberInvitationFrom(row: SqlRow): MemberInvitation {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    orgName: optional<string>(row.org_name),
    email: row.email as string,
    role: row.role as MemberRole,
    invitedBy: row.invited_by as string,
    createdAt: row.created_at as number,
    expiresAt: row.expires_at as number,
  };
}

export function supportGrantFrom(row: SqlRow): SupportGrant {
  return {
    id: row.id as string,
    operator: row.operator as string,
    conversationId: row.conversation_id as string,
    reason: row.reason as string,
    grantedAt: row.granted_at as number,
    expiresAt: row.expires_at as number,
    revokedAt: optional<number>(row.revoked_at),
  };
}
