// The directory on the embedded default: organisations, people, memberships, API keys,
// conversation access, invitations and refresh-token families in their own SQLite file, run in a
// worker thread (see server/worker/). Every method is synchronous and one transaction where it
// changes several rows; replay-sensitive updates (TOTP steps, refresh rotation, one-time codes)
// are conditional UPDATEs, so two concurrent requests cannot both succeed.

import Database from "better-sqlite3";
import type { SyncService } from "../worker/worker-service.ts";
import type {
  Accessor,
  ApiKeyRecord,
  ConversationParticipant,
  ConversationPerson,
  ConversationRecord,
  ConversationState,
  InvitationRecord,
  Membership,
  MemberRole,
  Organisation,
  ParticipantRole,
  RefreshOutcome,
  SupportGrant,
  User,
} from "./directory-types.ts";

/** A directory operation that cannot be done; `code` is stable ("conflict", "not_found"). */
export class DirectoryError extends Error {
  constructor(
    readonly code: "conflict" | "not_found" | "invalid",
    message: string,
  ) {
    super(message);
    this.name = "DirectoryError";
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS organisations (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL,
  require_2fa INTEGER NOT NULL DEFAULT 0, ip_allowlist TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, password_hash TEXT,
  totp_sealed BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
  org_id TEXT NOT NULL REFERENCES organisations(id), user_id TEXT NOT NULL REFERENCES users(id),
  role TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (org_id, user_id));
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships(user_id);
CREATE TABLE IF NOT EXISTS recovery_codes (
  user_id TEXT NOT NULL REFERENCES users(id), code_hash TEXT NOT NULL, used_at INTEGER,
  PRIMARY KEY (user_id, code_hash));
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES organisations(id), name TEXT NOT NULL,
  scopes TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL, last_used_at INTEGER, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES organisations(id), title TEXT NOT NULL,
  external_ref TEXT, status TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_org ON conversations(org_id, created_at);
CREATE INDEX IF NOT EXISTS conversations_by_ref ON conversations(org_id, external_ref);
CREATE TABLE IF NOT EXISTS conversation_orgs (
  conversation_id TEXT NOT NULL REFERENCES conversations(id), org_id TEXT NOT NULL REFERENCES organisations(id),
  role TEXT NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, org_id));
CREATE INDEX IF NOT EXISTS conversation_orgs_by_org ON conversation_orgs(org_id);
CREATE TABLE IF NOT EXISTS conversation_people (
  conversation_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL REFERENCES users(id),
  role TEXT NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, user_id));
CREATE INDEX IF NOT EXISTS conversation_people_by_user ON conversation_people(user_id);
CREATE TABLE IF NOT EXISTS invitations (
  id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, conversation_id TEXT NOT NULL REFERENCES conversations(id),
  email TEXT NOT NULL, role TEXT NOT NULL, invited_by_org TEXT NOT NULL, invited_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, user_id TEXT, device_hash TEXT);
CREATE INDEX IF NOT EXISTS invitations_by_conversation ON invitations(conversation_id);
CREATE TABLE IF NOT EXISTS invitation_codes (
  invitation_id TEXT NOT NULL REFERENCES invitations(id), code_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER, PRIMARY KEY (invitation_id, code_hash));
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, user_id TEXT NOT NULL, org_id TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, rotated_at INTEGER);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens(family_id);
CREATE TABLE IF NOT EXISTS support_grants (
  id TEXT PRIMARY KEY, operator TEXT NOT NULL, conversation_id TEXT NOT NULL, reason TEXT NOT NULL,
  granted_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS support_grants_by_conversation ON support_grants(conversation_id);
CREATE TABLE IF NOT EXISTS revoked_families (
  family_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, revoked_at INTEGER NOT NULL, reason TEXT NOT NULL);
`;

type Row = Record<string, unknown>;

function organisationFrom(row: Row): Organisation {
  return {
    id: row.id as string,
    name: row.name as string,
    createdAt: row.created_at as number,
    require2fa: row.require_2fa === 1,
    ipAllowlist: JSON.parse(row.ip_allowlist as string) as string[],
  };
}

function userFrom(row: Row): User {
  return {
    id: row.id as string,
    email: row.email as string,
    name: row.name as string,
    passwordHash: (row.password_hash as string | null) ?? null,
    totpSealed: row.totp_sealed ? new Uint8Array(row.totp_sealed as Buffer) : null,
    totpEnabled: row.totp_enabled === 1,
    totpLastStep: (row.totp_last_step as number | null) ?? null,
    createdAt: row.created_at as number,
  };
}

function apiKeyFrom(row: Row): ApiKeyRecord {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    name: row.name as string,
    scopes: JSON.parse(row.scopes as string) as string[],
    secretHash: row.secret_hash as string,
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
    lastUsedAt: (row.last_used_at as number | null) ?? null,
    revokedAt: (row.revoked_at as number | null) ?? null,
  };
}

function conversationFrom(row: Row): ConversationRecord {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    title: row.title as string,
    externalRef: (row.external_ref as string | null) ?? null,
    status: row.status as ConversationState,
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
  };
}

function invitationFrom(row: Row): InvitationRecord {
  return {
    id: row.id as string,
    conversationId: row.conversation_id as string,
    email: row.email as string,
    role: row.role as ParticipantRole,
    invitedByOrg: row.invited_by_org as string,
    invitedBy: row.invited_by as string,
    createdAt: row.created_at as number,
    expiresAt: row.expires_at as number,
    revokedAt: (row.revoked_at as number | null) ?? null,
    userId: (row.user_id as string | null) ?? null,
    deviceHash: (row.device_hash as string | null) ?? null,
  };
}

function supportGrantFrom(row: Row): SupportGrant {
  return {
    id: row.id as string,
    operator: row.operator as string,
    conversationId: row.conversation_id as string,
    reason: row.reason as string,
    grantedAt: row.granted_at as number,
    expiresAt: row.expires_at as number,
    revokedAt: (row.revoked_at as number | null) ?? null,
  };
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code?.startsWith("SQLITE_CONSTRAINT") ?? false;
}

/** The synchronous directory; call through the worker as `Directory` (see directory.ts). */
export class SqliteDirectory implements SyncService {
  readonly operations = [
    "createOrganisationWithOwner",
    "createUser",
    "getUser",
    "getUserByEmail",
    "setPasswordHash",
    "setTotp",
    "enableTotp",
    "consumeTotpStep",
    "replaceRecoveryCodes",
    "consumeRecoveryCode",
    "getOrganisation",
    "updateOrganisation",
    "listMemberships",
    "getMembership",
    "listMembers",
    "putMember",
    "removeMember",
    "createApiKey",
    "getApiKey",
    "listApiKeys",
    "revokeApiKey",
    "touchApiKey",
    "createConversation",
    "getConversation",
    "listConversations",
    "setConversationStatus",
    "listParticipants",
    "putParticipant",
    "removeParticipant",
    "listPeople",
    "putPerson",
    "removePerson",
    "accessRole",
    "createInvitation",
    "getInvitationByTokenHash",
    "getInvitation",
    "listInvitations",
    "revokeInvitation",
    "bindInvitation",
    "addInvitationCode",
    "consumeInvitationCode",
    "insertRefreshToken",
    "rotateRefreshToken",
    "revokeFamily",
    "revokeUserSessions",
    "isFamilyRevoked",
    "recordSupportGrant",
    "getSupportGrant",
    "listSupportGrants",
    "revokeSupportGrant",
    "close",
  ] as const;

  constructor(private readonly db: Database.Database) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  // ── people and organisations ────────────────────────────────────────────────────────────

  /** Sign-up: a new organisation with its first member as owner. Conflict when the email exists. */
  createOrganisationWithOwner(org: { id: string; name: string }, user: { id: string; email: string; name: string; passwordHash: string }, now: number): void {
    this.db.transaction(() => {
      this.db.prepare("INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)").run(org.id, org.name, now);
      this.insertUser(user, now);
      this.db.prepare("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)").run(org.id, user.id, now);
    })();
  }

  /** A person with their own (personal) organisation, e.g. an invited supplier's first sign-in. */
  createUser(user: { id: string; email: string; name: string; passwordHash: string | null }, personalOrg: { id: string; name: string }, now: number): void {
    this.db.transaction(() => {
      this.db.prepare("INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)").run(personalOrg.id, personalOrg.name, now);
      this.insertUser(user, now);
      this.db.prepare("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)").run(personalOrg.id, user.id, now);
    })();
  }

  private insertUser(user: { id: string; email: string; name: string; passwordHash: string | null }, now: number): void {
    try {
      this.db
        .prepare("INSERT INTO users (id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)")
        .run(user.id, user.email.toLowerCase(), user.name, user.passwordHash, now);
    } catch (error) {
      if (isUniqueViolation(error)) throw new DirectoryError("conflict", "an account with this email exists");
      throw error;
    }
  }

  getUser(id: string): User | null {
    const row = this.db.prepare("SELECT * FROM users WHERE id = ?").get(id) as Row | undefined;
    return row ? userFrom(row) : null;
  }

  getUserByEmail(email: string): User | null {
    const row = this.db.prepare("SELECT * FROM users WHERE email = ?").get(email.toLowerCase()) as Row | undefined;
    return row ? userFrom(row) : null;
  }

  setPasswordHash(userId: string, hash: string): void {
    this.db.prepare("UPDATE users SET password_hash = ? WHERE id = ?").run(hash, userId);
  }

  /** Stores a (pending or enabled) TOTP secret, or clears it. Resets the replay guard. */
  setTotp(userId: string, sealed: Uint8Array | null, enabled: boolean): void {
    this.db.prepare("UPDATE users SET totp_sealed = ?, totp_enabled = ?, totp_last_step = NULL WHERE id = ?").run(sealed, enabled ? 1 : 0, userId);
  }

  /** Turns on a confirmed TOTP secret (the step used to confirm it stays spent). */
  enableTotp(userId: string): void {
    this.db.prepare("UPDATE users SET totp_enabled = 1 WHERE id = ? AND totp_sealed IS NOT NULL").run(userId);
  }

  /** Records a used TOTP step; false if that step (or a later one) was already used. */
  consumeTotpStep(userId: string, step: number): boolean {
    const result = this.db
      .prepare("UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)")
      .run(step, userId, step);
    return result.changes === 1;
  }

  replaceRecoveryCodes(userId: string, hashes: string[]): void {
    this.db.transaction(() => {
      this.db.prepare("DELETE FROM recovery_codes WHERE user_id = ?").run(userId);
      const insert = this.db.prepare("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)");
      for (const hash of hashes) insert.run(userId, hash);
    })();
  }

  /** Uses a recovery code once; false when unknown or already used. */
  consumeRecoveryCode(userId: string, hash: string, now: number): boolean {
    const result = this.db
      .prepare("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")
      .run(now, userId, hash);
    return result.changes === 1;
  }

  getOrganisation(id: string): Organisation | null {
    const row = this.db.prepare("SELECT * FROM organisations WHERE id = ?").get(id) as Row | undefined;
    return row ? organisationFrom(row) : null;
  }

  updateOrganisation(id: string, changes: { name?: string; require2fa?: boolean; ipAllowlist?: string[] }): void {
    const org = this.getOrganisation(id);
    if (!org) throw new DirectoryError("not_found", "no such organisation");
    this.db
      .prepare("UPDATE organisations SET name = ?, require_2fa = ?, ip_allowlist = ? WHERE id = ?")
      .run(changes.name ?? org.name, (changes.require2fa ?? org.require2fa) ? 1 : 0, JSON.stringify(changes.ipAllowlist ?? org.ipAllowlist), id);
  }

  listMemberships(userId: string): Membership[] {
    const rows = this.db
      .prepare("SELECT m.org_id, o.name AS org_name, m.user_id, m.role FROM memberships m JOIN organisations o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY m.created_at")
      .all(userId) as Row[];
    return rows.map((r) => ({ orgId: r.org_id as string, orgName: r.org_name as string, userId: r.user_id as string, role: r.role as MemberRole }));
  }

  getMembership(orgId: string, userId: string): MemberRole | null {
    const row = this.db.prepare("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?").get(orgId, userId) as Row | undefined;
    return row ? (row.role as MemberRole) : null;
  }

  listMembers(orgId: string): { userId: string; email: string; name: string; role: MemberRole }[] {
    const rows = this.db
      .prepare("SELECT u.id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? ORDER BY m.created_at")
      .all(orgId) as Row[];
    return rows.map((r) => ({ userId: r.id as string, email: r.email as string, name: r.name as string, role: r.role as MemberRole }));
  }

  putMember(orgId: string, userId: string, role: MemberRole, now: number): void {
    this.db
      .prepare("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role")
      .run(orgId, userId, role, now);
  }

  /** Removes a member; refuses to remove the last owner. */
  removeMember(orgId: string, userId: string): boolean {
    return this.db.transaction(() => {
      const role = this.getMembership(orgId, userId);
      if (!role) return false;
      if (role === "owner") {
        const owners = this.db.prepare("SELECT COUNT(*) AS n FROM memberships WHERE org_id = ? AND role = 'owner'").get(orgId) as Row;
        if ((owners.n as number) <= 1) throw new DirectoryError("invalid", "an organisation keeps at least one owner");
      }
      this.db.prepare("DELETE FROM memberships WHERE org_id = ? AND user_id = ?").run(orgId, userId);
      return true;
    })();
  }

  // ── API keys ────────────────────────────────────────────────────────────────────────────

  createApiKey(key: { id: string; orgId: string; name: string; scopes: string[]; secretHash: string; createdBy: string }, now: number): void {
    this.db
      .prepare("INSERT INTO api_keys (id, org_id, name, scopes, secret_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(key.id, key.orgId, key.name, JSON.stringify(key.scopes), key.secretHash, now, key.createdBy);
  }

  getApiKey(id: string): ApiKeyRecord | null {
    const row = this.db.prepare("SELECT * FROM api_keys WHERE id = ?").get(id) as Row | undefined;
    return row ? apiKeyFrom(row) : null;
  }

  listApiKeys(orgId: string): ApiKeyRecord[] {
    return (this.db.prepare("SELECT * FROM api_keys WHERE org_id = ? ORDER BY created_at").all(orgId) as Row[]).map(apiKeyFrom);
  }

  revokeApiKey(orgId: string, id: string, now: number): boolean {
    return this.db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL").run(now, id, orgId).changes === 1;
  }

  /** Records use, at most once a minute per key (a write per request would be wasted I/O). */
  touchApiKey(id: string, now: number): void {
    this.db.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)").run(now, id, now - 60_000);
  }

  // ── conversations (the access side; content lives in the log store) ─────────────────────

  createConversation(
    conversation: { id: string; orgId: string; title: string; externalRef: string | null; createdBy: string },
    participants: { orgId: string; role: ParticipantRole }[],
    now: number,
  ): void {
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO conversations (id, org_id, title, external_ref, status, created_at, created_by) VALUES (?, ?, ?, ?, 'open', ?, ?)")
        .run(conversation.id, conversation.orgId, conversation.title, conversation.externalRef, now, conversation.createdBy);
      for (const p of participants) this.putParticipant(conversation.id, p.orgId, p.role, now);
    })();
  }

  getConversation(id: string): ConversationRecord | null {
    const row = this.db.prepare("SELECT * FROM conversations WHERE id = ?").get(id) as Row | undefined;
    return row ? conversationFrom(row) : null;
  }

  /**
   * Conversations visible to an accessor, newest first, paged by (created_at, id) cursor:
   * started by its organisation, joined by its organisation, or (for people) invited to.
   */
  listConversations(accessor: Accessor, options: { before?: { createdAt: number; id: string }; limit: number; externalRef?: string }): ConversationRecord[] {
    const clauses = ["(c.org_id = @org OR c.id IN (SELECT conversation_id FROM conversation_orgs WHERE org_id = @org)"];
    if (accessor.userId) clauses[0] += " OR c.id IN (SELECT conversation_id FROM conversation_people WHERE user_id = @user)";
    clauses[0] += ")";
    if (options.externalRef !== undefined) clauses.push("c.external_ref = @ref");
    if (options.before) clauses.push("(c.created_at < @beforeAt OR (c.created_at = @beforeAt AND c.id < @beforeId))");
    const rows = this.db
      .prepare(`SELECT c.* FROM conversations c WHERE ${clauses.join(" AND ")} ORDER BY c.created_at DESC, c.id DESC LIMIT @limit`)
      .all({
        org: accessor.orgId,
        user: accessor.userId ?? null,
        ref: options.externalRef ?? null,
        beforeAt: options.before?.createdAt ?? null,
        beforeId: options.before?.id ?? null,
        limit: options.limit,
      }) as Row[];
    return rows.map(conversationFrom);
  }

  setConversationStatus(id: string, status: ConversationState): void {
    this.db.prepare("UPDATE conversations SET status = ? WHERE id = ?").run(status, id);
  }

  listParticipants(conversationId: string): ConversationParticipant[] {
    const rows = this.db
      .prepare("SELECT p.org_id, o.name, p.role FROM conversation_orgs p JOIN organisations o ON o.id = p.org_id WHERE p.conversation_id = ? ORDER BY p.added_at")
      .all(conversationId) as Row[];
    return rows.map((r) => ({ orgId: r.org_id as string, orgName: r.name as string, role: r.role as ParticipantRole }));
  }

  putParticipant(conversationId: string, orgId: string, role: ParticipantRole, now: number): void {
    if (!this.getOrganisation(orgId)) throw new DirectoryError("not_found", `no organisation ${orgId}`);
    this.db
      .prepare("INSERT INTO conversation_orgs (conversation_id, org_id, role, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, org_id) DO UPDATE SET role = excluded.role")
      .run(conversationId, orgId, role, now);
  }

  removeParticipant(conversationId: string, orgId: string): boolean {
    return this.db.prepare("DELETE FROM conversation_orgs WHERE conversation_id = ? AND org_id = ?").run(conversationId, orgId).changes === 1;
  }

  listPeople(conversationId: string): ConversationPerson[] {
    const rows = this.db
      .prepare("SELECT p.user_id, u.email, p.role FROM conversation_people p JOIN users u ON u.id = p.user_id WHERE p.conversation_id = ? ORDER BY p.added_at")
      .all(conversationId) as Row[];
    return rows.map((r) => ({ userId: r.user_id as string, email: r.email as string, role: r.role as ParticipantRole }));
  }

  putPerson(conversationId: string, userId: string, role: ParticipantRole, now: number): void {
    this.db
      .prepare("INSERT INTO conversation_people (conversation_id, user_id, role, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role")
      .run(conversationId, userId, role, now);
  }

  removePerson(conversationId: string, userId: string): boolean {
    return this.db.prepare("DELETE FROM conversation_people WHERE conversation_id = ? AND user_id = ?").run(conversationId, userId).changes === 1;
  }

  /**
   * The accessor's current role in a conversation, or null (which callers answer as 404):
   * members of the starting organisation write; participant organisations' members and
   * invited people get their recorded role; a person must still be a member of the
   * organisation they act for. A closed conversation is read-only for everyone.
   */
  accessRole(conversationId: string, accessor: Accessor): "writer" | "observer" | null {
    const conversation = this.getConversation(conversationId);
    if (!conversation) return null;
    if (accessor.userId && !this.getMembership(accessor.orgId, accessor.userId)) return null;
    let role: ParticipantRole | null = null;
    if (conversation.orgId === accessor.orgId) role = "participant";
    else {
      const org = this.db.prepare("SELECT role FROM conversation_orgs WHERE conversation_id = ? AND org_id = ?").get(conversationId, accessor.orgId) as Row | undefined;
      if (org) role = org.role as ParticipantRole;
    }
    if (accessor.userId && role !== "participant") {
      const person = this.db.prepare("SELECT role FROM conversation_people WHERE conversation_id = ? AND user_id = ?").get(conversationId, accessor.userId) as Row | undefined;
      if (person && (role === null || person.role === "participant")) role = person.role as ParticipantRole;
    }
    if (role === null) return null;
    if (conversation.status === "closed") return "observer";
    return role === "participant" ? "writer" : "observer";
  }

  // ── invitations ─────────────────────────────────────────────────────────────────────────

  createInvitation(invitation: Omit<InvitationRecord, "revokedAt" | "userId" | "deviceHash"> & { tokenHash: string }): void {
    this.db
      .prepare(
        "INSERT INTO invitations (id, token_hash, conversation_id, email, role, invited_by_org, invited_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        invitation.id,
        invitation.tokenHash,
        invitation.conversationId,
        invitation.email.toLowerCase(),
        invitation.role,
        invitation.invitedByOrg,
        invitation.invitedBy,
        invitation.createdAt,
        invitation.expiresAt,
      );
  }

  getInvitationByTokenHash(tokenHash: string): InvitationRecord | null {
    const row = this.db.prepare("SELECT * FROM invitations WHERE token_hash = ?").get(tokenHash) as Row | undefined;
    return row ? invitationFrom(row) : null;
  }

  getInvitation(id: string): InvitationRecord | null {
    const row = this.db.prepare("SELECT * FROM invitations WHERE id = ?").get(id) as Row | undefined;
    return row ? invitationFrom(row) : null;
  }

  listInvitations(conversationId: string): InvitationRecord[] {
    return (this.db.prepare("SELECT * FROM invitations WHERE conversation_id = ? ORDER BY created_at").all(conversationId) as Row[]).map(invitationFrom);
  }

  revokeInvitation(id: string, now: number): boolean {
    return this.db.prepare("UPDATE invitations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(now, id).changes === 1;
  }

  /** First use: binds the invitation to a person and a device, and adds the person to the conversation. */
  bindInvitation(id: string, userId: string, deviceHash: string, now: number): boolean {
    return this.db.transaction(() => {
      const bound = this.db.prepare("UPDATE invitations SET user_id = ?, device_hash = ? WHERE id = ? AND user_id IS NULL").run(userId, deviceHash, id);
      if (bound.changes !== 1) return false;
      const invitation = this.getInvitation(id);
      if (invitation) this.putPerson(invitation.conversationId, userId, invitation.role, now);
      return true;
    })();
  }

  addInvitationCode(invitationId: string, codeHash: string, expiresAt: number): void {
    this.db.prepare("INSERT OR REPLACE INTO invitation_codes (invitation_id, code_hash, expires_at) VALUES (?, ?, ?)").run(invitationId, codeHash, expiresAt);
  }

  /** Uses an emailed code once, within its validity. */
  consumeInvitationCode(invitationId: string, codeHash: string, now: number): boolean {
    return (
      this.db
        .prepare("UPDATE invitation_codes SET used_at = ? WHERE invitation_id = ? AND code_hash = ? AND used_at IS NULL AND expires_at > ?")
        .run(now, invitationId, codeHash, now).changes === 1
    );
  }

  // ── refresh-token families ──────────────────────────────────────────────────────────────

  insertRefreshToken(token: { tokenHash: string; familyId: string; userId: string; orgId: string; expiresAt: number }, now: number): void {
    this.db
      .prepare("INSERT INTO refresh_tokens (token_hash, family_id, user_id, org_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(token.tokenHash, token.familyId, token.userId, token.orgId, now, token.expiresAt);
  }

  /**
   * Rotates a refresh token: the presented one is spent and `nextHash` issued in its family. A
   * token presented twice means it was stolen (or replayed): the whole family is revoked.
   */
  rotateRefreshToken(tokenHash: string, nextHash: string, nextExpiresAt: number, now: number): RefreshOutcome {
    return this.db.transaction((): RefreshOutcome => {
      const row = this.db.prepare("SELECT * FROM refresh_tokens WHERE token_hash = ?").get(tokenHash) as Row | undefined;
      if (!row) return { status: "invalid" };
      const familyId = row.family_id as string;
      const userId = row.user_id as string;
      if (this.isFamilyRevoked(familyId)) return { status: "invalid" };
      if (row.rotated_at !== null) {
        this.revokeFamily(familyId, userId, "refresh token reused", now);
        return { status: "reused", familyId, userId };
      }
      if ((row.expires_at as number) <= now) return { status: "invalid" };
      this.db.prepare("UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?").run(now, tokenHash);
      this.insertRefreshToken({ tokenHash: nextHash, familyId, userId, orgId: row.org_id as string, expiresAt: nextExpiresAt }, now);
      return { status: "rotated", userId, orgId: row.org_id as string, familyId };
    })();
  }

  revokeFamily(familyId: string, userId: string, reason: string, now: number): void {
    this.db.prepare("INSERT OR IGNORE INTO revoked_families (family_id, user_id, revoked_at, reason) VALUES (?, ?, ?, ?)").run(familyId, userId, now, reason);
  }

  /** Revokes every session family of a person; returns the family ids. */
  revokeUserSessions(userId: string, reason: string, now: number): string[] {
    return this.db.transaction(() => {
      const families = (this.db.prepare("SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = ?").all(userId) as Row[]).map((r) => r.family_id as string);
      for (const family of families) this.revokeFamily(family, userId, reason, now);
      return families;
    })();
  }

  // ── operator support access ─────────────────────────────────────────────────────────────

  /** Records a support grant before its token is issued: the record is the audit of the access. */
  recordSupportGrant(grant: SupportGrant): void {
    if (!this.getConversation(grant.conversationId)) throw new DirectoryError("not_found", `no conversation ${grant.conversationId}`);
    this.db
      .prepare("INSERT INTO support_grants (id, operator, conversation_id, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(grant.id, grant.operator, grant.conversationId, grant.reason, grant.grantedAt, grant.expiresAt);
  }

  getSupportGrant(id: string): SupportGrant | null {
    const row = this.db.prepare("SELECT * FROM support_grants WHERE id = ?").get(id) as Row | undefined;
    return row ? supportGrantFrom(row) : null;
  }

  listSupportGrants(conversationId: string): SupportGrant[] {
    return (this.db.prepare("SELECT * FROM support_grants WHERE conversation_id = ? ORDER BY granted_at").all(conversationId) as Row[]).map(supportGrantFrom);
  }

  revokeSupportGrant(id: string, now: number): boolean {
    return this.db.prepare("UPDATE support_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(now, id).changes === 1;
  }

  isFamilyRevoked(familyId: string): boolean {
    return this.db.prepare("SELECT 1 FROM revoked_families WHERE family_id = ?").get(familyId) !== undefined;
  }
}

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { path: string }): SqliteDirectory {
  return new SqliteDirectory(new Database(options.path));
}
