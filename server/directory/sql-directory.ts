// The directory's logic, written once over a SqlRunner: the SQLite backend runs it inside its
// worker thread, the Postgres backend on the event loop against a pool. What must hold when
// several nodes race (one TOTP step, one refresh rotation, one invitation binding, at least one
// owner) rests on conditional UPDATEs and row locks in the shared statements, not on this process.

import { SqlAuditLog } from "./sql-audit-log.ts";
import { AUDITED_OPERATIONS, type AuditedOperation, type AuditedOutcome, type AuditedStep, changedSomething, type Directory, DirectoryError, type OrgAuditAppend } from "./directory.ts";
import {
  type AccessRow,
  accessFromRow,
  apiKeyFrom,
  conversationFrom,
  type DirectoryStatements,
  directoryStatements,
  invitationFrom,
  memberInvitationFrom,
  listConversationsQuery,
  pendingSignupFrom,
  organisationFrom,
  removesLastOwner,
  supportGrantFrom,
  userFrom,
} from "./directory-queries.ts";
import type {
  AccessLevel,
  Accessor,
  ApiKeyRecord,
  ConversationParticipant,
  ConversationParty,
  ConversationPerson,
  ConversationRecord,
  ConfirmedSignup,
  ConversationState,
  DeletionRecord,
  ErasedPerson,
  InvitationRecord,
  LegalHold,
  MemberInvitation,
  MemberRole,
  Membership,
  Organisation,
  OrganisationMember,
  ParticipantRole,
  PendingSignup,
  RefreshOutcome,
  SupportGrant,
  User,
  WebauthnCredential,
} from "./directory-types.ts";
import { deletionRecordFrom, erasedEmail, LIFECYCLE_STATEMENTS, legalHoldFrom, partyFrom } from "./lifecycle-queries.ts";
import type { SqlRow, SqlRunner } from "../sql/sql-runner.ts";

/** API keys record their last use at most this often. */
const TOUCH_INTERVAL_MS = 60_000;

/** The directory over any SQL backend; see {@link Directory} for what each operation promises. */
export class SqlDirectory implements Directory {
  private readonly sql: DirectoryStatements;

  /** `insideTransaction`: every call runs inside an audited change's transaction, which ends after them. */
  constructor(
    private readonly db: SqlRunner,
    private readonly insideTransaction = false,
  ) {
    this.sql = directoryStatements(db.dialect);
  }

  // ── people and organisations ──────────────────────────────────────────────────────────────

  createOrganisationWithOwner(
    org: { id: string; name: string },
    user: { id: string; email: string; name: string; passwordHash: string },
    now: number,
  ): Promise<void> {
    return this.createWithOwnOrganisation(user, org, now);
  }

  createUser(
    user: { id: string; email: string; name: string; passwordHash: string | null },
    personalOrg: { id: string; name: string },
    now: number,
  ): Promise<void> {
    return this.createWithOwnOrganisation(user, personalOrg, now);
  }

  /** A person, an organisation and the person as its owner, all or nothing. */
  private createWithOwnOrganisation(
    user: { id: string; email: string; name: string; passwordHash: string | null },
    org: { id: string; name: string },
    now: number,
  ): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run(this.sql.organisation.insert, [org.id, org.name, now]);
      try {
        await tx.run(this.sql.user.insert, [user.id, user.email.toLowerCase(), user.name, user.passwordHash, now]);
      } catch (error) {
        if (tx.isUniqueViolation(error)) throw new DirectoryError("conflict", "an account with this email exists");
        throw error;
      }
      await tx.run(this.sql.membership.insertOwner, [org.id, user.id, now]);
    });
  }

  async createPendingSignup(signup: PendingSignup & { tokenHash: string }, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(this.sql.pendingSignup.purgeExpired, [now]);
      const { tokenHash, email, name, organisation, passwordHash, createdAt, expiresAt } = signup;
      await tx.run(this.sql.pendingSignup.insert, [tokenHash, email.toLowerCase(), name, organisation, passwordHash, createdAt, expiresAt]);
    });
  }

  async getPendingSignup(tokenHash: string, now: number): Promise<PendingSignup | null> {
    const row = await this.db.get(this.sql.pendingSignup.selectLive, [tokenHash, now]);
    return row ? pendingSignupFrom(row) : null;
  }

  confirmPendingSignup(tokenHash: string, ids: { userId: string; orgId: string }, now: number): Promise<ConfirmedSignup | null> {
    return this.db.transaction(async (tx): Promise<ConfirmedSignup | null> => {
      const row = await tx.get(this.sql.pendingSignup.spend, [tokenHash, now]);
      if (!row) return null;
      const signup = pendingSignupFrom(row);
      // Taken since the link was mailed (another link, an invitation): the link is spent, the
      // account that exists stays exactly as it is.
      if (await tx.get(this.sql.user.selectByEmail, [signup.email])) return { status: "exists" };
      const user = { id: ids.userId, email: signup.email, name: signup.name };
      const organisation = { id: ids.orgId, name: signup.organisation };
      await tx.run(this.sql.organisation.insert, [organisation.id, organisation.name, now]);
      await tx.run(this.sql.user.insert, [user.id, user.email, user.name, signup.passwordHash, now]);
      await tx.run(this.sql.membership.insertOwner, [organisation.id, user.id, now]);
      return { status: "created", user, organisation };
    });
  }

  async getUser(id: string): Promise<User | null> {
    const row = await this.db.get(this.sql.user.select, [id]);
    return row ? userFrom(row) : null;
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const row = await this.db.get(this.sql.user.selectByEmail, [email.toLowerCase()]);
    return row ? userFrom(row) : null;
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    await this.db.run(this.sql.user.setPasswordHash, [hash, userId]);
  }

  async setTotp(userId: string, sealed: Uint8Array | null, enabled: boolean): Promise<void> {
    await this.db.run(this.sql.user.setTotp, [sealed, enabled, userId]);
  }

  async enableTotp(userId: string): Promise<void> {
    await this.db.run(this.sql.user.enableTotp, [userId]);
  }

  async consumeTotpStep(userId: string, step: number): Promise<boolean> {
    return (await this.db.run(this.sql.user.consumeTotpStep, [step, userId, step])) === 1;
  }

  replaceRecoveryCodes(userId: string, hashes: string[]): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run(this.sql.recoveryCode.deleteAll, [userId]);
      for (const hash of hashes) await tx.run(this.sql.recoveryCode.insert, [userId, hash]);
    });
  }

  issueRecoveryCodesIfNone(userId: string, hashes: string[]): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.get(this.sql.recoveryCode.lockOwner, [userId]);
      if (Number((await tx.get(this.sql.recoveryCode.countUnused, [userId]))?.n ?? 0) > 0) return false;
      await tx.run(this.sql.recoveryCode.deleteAll, [userId]);
      for (const hash of hashes) await tx.run(this.sql.recoveryCode.insert, [userId, hash]);
      return true;
    });
  }

  removeRecoveryCodesWithoutSecondFactor(userId: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // Locked first, so of two transactions removing a person's last two keys at once, the later
      // one looks after the earlier committed and sees no key left (on Postgres' read committed,
      // each would otherwise still see the other's key).
      await tx.get(this.sql.recoveryCode.lockOwner, [userId]);
      return (await tx.run(this.sql.recoveryCode.deleteWithoutSecondFactor, [userId, userId, userId])) > 0;
    });
  }

  async consumeRecoveryCode(userId: string, hash: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.recoveryCode.consume, [now, userId, hash])) === 1;
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    return Number((await this.db.get(this.sql.recoveryCode.countUnused, [userId]))?.n ?? 0);
  }

  async addWebauthnCredential(c: Omit<WebauthnCredential, "lastUsedAt">): Promise<void> {
    await this.db.run(this.sql.webauthn.insert, [c.id, c.userId, c.name, c.publicKey, c.counter, JSON.stringify(c.transports), c.createdAt]);
  }

  async listWebauthnCredentials(userId: string): Promise<WebauthnCredential[]> {
    return (await this.db.all(this.sql.webauthn.listByUser, [userId])).map(webauthnFrom);
  }

  async getWebauthnCredential(id: string): Promise<WebauthnCredential | null> {
    const row = await this.db.get(this.sql.webauthn.select, [id]);
    return row ? webauthnFrom(row) : null;
  }

  async useWebauthnCredential(id: string, counter: number, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.webauthn.use, [counter, now, id, counter, counter])) === 1;
  }

  async renameWebauthnCredential(userId: string, id: string, name: string): Promise<boolean> {
    return (await this.db.run(this.sql.webauthn.rename, [name, id, userId])) === 1;
  }

  async removeWebauthnCredential(userId: string, id: string): Promise<boolean> {
    return (await this.db.run(this.sql.webauthn.remove, [id, userId])) === 1;
  }

  async listOrganisationIds(): Promise<string[]> {
    return (await this.db.all(this.sql.organisation.listIds, [])).map((row) => String((row as { id: unknown }).id));
  }

  async getOrganisation(id: string): Promise<Organisation | null> {
    const row = await this.db.get(this.sql.organisation.select, [id]);
    return row ? organisationFrom(row) : null;
  }

  updateOrganisation(id: string, changes: { name?: string; require2fa?: boolean; ipAllowlist?: string[]; retentionDays?: number; requireSecurityKey?: boolean }): Promise<void> {
    return this.db.transaction(async (tx) => {
      // Locked while changed, so two nodes changing different settings at once both keep theirs.
      const row = await tx.get(this.sql.organisation.selectForUpdate, [id]);
      if (!row) throw new DirectoryError("not_found", "no such organisation");
      const org = organisationFrom(row);
      await tx.run(this.sql.organisation.update, [
        changes.name ?? org.name,
        changes.require2fa ?? org.require2fa,
        JSON.stringify(changes.ipAllowlist ?? org.ipAllowlist),
        changes.retentionDays ?? org.retentionDays,
        changes.requireSecurityKey ?? org.requireSecurityKey,
        id,
      ]);
    });
  }

  async listMemberships(userId: string): Promise<Membership[]> {
    const rows = await this.db.all(this.sql.membership.listByUser, [userId]);
    return rows.map((r) => ({ orgId: r.org_id as string, orgName: r.org_name as string, userId: r.user_id as string, role: r.role as MemberRole }));
  }

  getMembership(orgId: string, userId: string): Promise<MemberRole | null> {
    return this.membershipOf(this.db, orgId, userId);
  }

  private async membershipOf(q: SqlRunner, orgId: string, userId: string): Promise<MemberRole | null> {
    const row = await q.get(this.sql.membership.selectRole, [orgId, userId]);
    return row ? (row.role as MemberRole) : null;
  }

  async listMembers(orgId: string): Promise<OrganisationMember[]> {
    const rows = await this.db.all(this.sql.membership.listByOrg, [orgId]);
    return rows.map((r) => ({ userId: r.id as string, email: r.email as string, name: r.name as string, role: r.role as MemberRole }));
  }

  putMember(orgId: string, userId: string, role: MemberRole, now: number): Promise<void> {
    return this.changeMembership(orgId, userId, role, async (tx) => {
      await tx.run(this.sql.membership.upsert, [orgId, userId, role, now]);
    });
  }

  removeMember(orgId: string, userId: string): Promise<boolean> {
    return this.changeMembership(orgId, userId, null, async (tx, current) => {
      if (!current) return false;
      await tx.run(this.sql.membership.delete, [orgId, userId]);
      return true;
    });
  }

  /**
   * Changes one membership (`next` null: removes it) with the organisation's row locked, so
   * concurrent changes on several nodes take turns and cannot together remove every owner.
   */
  private changeMembership<T>(
    orgId: string,
    userId: string,
    next: MemberRole | null,
    change: (tx: SqlRunner, current: MemberRole | null) => Promise<T>,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.get(this.sql.organisation.lock, [orgId]);
      const current = await this.membershipOf(tx, orgId, userId);
      if (current === "owner" && next !== "owner") {
        const owners = ((await tx.get(this.sql.membership.countOwners, [orgId]))?.n as number | undefined) ?? 0;
        if (removesLastOwner(current, next, owners)) throw new DirectoryError("invalid", "an organisation keeps at least one owner");
      }
      return change(tx, current);
    });
  }

  // ── API keys ──────────────────────────────────────────────────────────────────────────────

  async createApiKey(key: { id: string; orgId: string; name: string; scopes: string[]; secretHash: string; createdBy: string }, now: number): Promise<void> {
    await this.db.run(this.sql.apiKey.insert, [key.id, key.orgId, key.name, JSON.stringify(key.scopes), key.secretHash, now, key.createdBy]);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    const row = await this.db.get(this.sql.apiKey.select, [id]);
    return row ? apiKeyFrom(row) : null;
  }

  async listApiKeys(orgId: string): Promise<ApiKeyRecord[]> {
    return (await this.db.all(this.sql.apiKey.listByOrg, [orgId])).map(apiKeyFrom);
  }

  async revokeApiKey(orgId: string, id: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.apiKey.revoke, [now, id, orgId])) === 1;
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    await this.db.run(this.sql.apiKey.touch, [now, id, now - TOUCH_INTERVAL_MS]);
  }

  // ── conversations ─────────────────────────────────────────────────────────────────────────

  createConversation(
    conversation: { id: string; orgId: string; title: string; externalRef: string | null; createdBy: string },
    participants: { orgId: string; role: ParticipantRole }[],
    now: number,
  ): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run(this.sql.conversation.insert, [
        conversation.id,
        conversation.orgId,
        conversation.title,
        conversation.externalRef,
        now,
        conversation.createdBy,
      ]);
      for (const p of participants) await this.addParticipant(tx, conversation.id, p.orgId, p.role, now);
    });
  }

  async getConversation(id: string): Promise<ConversationRecord | null> {
    const row = await this.db.get(this.sql.conversation.select, [id]);
    return row ? conversationFrom(row) : null;
  }

  async listConversations(
    accessor: Accessor,
    options: { before?: { createdAt: number; id: string }; limit: number; externalRef?: string },
  ): Promise<ConversationRecord[]> {
    const { sql, params } = listConversationsQuery(accessor, options);
    return (await this.db.all(sql, params)).map(conversationFrom);
  }

  async setConversationStatus(id: string, status: ConversationState): Promise<void> {
    await this.db.run(this.sql.conversation.setStatus, [status, id]);
  }

  async listParticipants(conversationId: string): Promise<ConversationParticipant[]> {
    const rows = await this.db.all(this.sql.participant.list, [conversationId]);
    return rows.map((r) => ({ orgId: r.org_id as string, orgName: r.name as string, role: r.role as ParticipantRole }));
  }

  putParticipant(conversationId: string, orgId: string, role: ParticipantRole, now: number): Promise<void> {
    return this.addParticipant(this.db, conversationId, orgId, role, now);
  }

  private async addParticipant(q: SqlRunner, conversationId: string, orgId: string, role: ParticipantRole, now: number): Promise<void> {
    if (!(await q.get(this.sql.organisation.select, [orgId]))) throw new DirectoryError("not_found", `no organisation ${orgId}`);
    await q.run(this.sql.participant.upsert, [conversationId, orgId, role, now]);
  }

  async removeParticipant(conversationId: string, orgId: string): Promise<boolean> {
    return (await this.db.run(this.sql.participant.delete, [conversationId, orgId])) === 1;
  }

  async listPeople(conversationId: string): Promise<ConversationPerson[]> {
    const rows = await this.db.all(this.sql.person.list, [conversationId]);
    return rows.map((r) => ({ userId: r.user_id as string, email: r.email as string, role: r.role as ParticipantRole }));
  }

  async putPerson(conversationId: string, userId: string, role: ParticipantRole, now: number): Promise<void> {
    await this.db.run(this.sql.person.upsert, [conversationId, userId, role, now]);
  }

  async removePerson(conversationId: string, userId: string): Promise<boolean> {
    return (await this.db.run(this.sql.person.delete, [conversationId, userId])) === 1;
  }

  async accessRole(conversationId: string, accessor: Accessor): Promise<AccessLevel | null> {
    const user = accessor.userId ?? null;
    const row = await this.db.get<AccessRow>(this.sql.conversation.access, [accessor.orgId, user, accessor.orgId, user, accessor.orgId, conversationId]);
    return accessFromRow(row, accessor);
  }

  // ── invitations ───────────────────────────────────────────────────────────────────────────

  async createInvitation(invitation: Omit<InvitationRecord, "revokedAt" | "userId" | "deviceHash"> & { tokenHash: string }): Promise<void> {
    await this.db.run(this.sql.invitation.insert, [
      invitation.id,
      invitation.tokenHash,
      invitation.conversationId,
      invitation.email.toLowerCase(),
      invitation.role,
      invitation.invitedByOrg,
      invitation.invitedBy,
      invitation.createdAt,
      invitation.expiresAt,
    ]);
  }

  async getInvitationByTokenHash(tokenHash: string): Promise<InvitationRecord | null> {
    const row = await this.db.get(this.sql.invitation.selectByTokenHash, [tokenHash]);
    return row ? invitationFrom(row) : null;
  }

  async getInvitation(id: string): Promise<InvitationRecord | null> {
    const row = await this.db.get(this.sql.invitation.select, [id]);
    return row ? invitationFrom(row) : null;
  }

  async listInvitations(conversationId: string): Promise<InvitationRecord[]> {
    return (await this.db.all(this.sql.invitation.listByConversation, [conversationId])).map(invitationFrom);
  }

  async revokeInvitation(id: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.invitation.revoke, [now, id])) === 1;
  }

  bindInvitation(id: string, userId: string, deviceHash: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const bound = await tx.get(this.sql.invitation.bind, [userId, deviceHash, id]);
      if (!bound) return false;
      await tx.run(this.sql.person.upsert, [bound.conversation_id as string, userId, bound.role as ParticipantRole, now]);
      return true;
    });
  }

  async addInvitationCode(invitationId: string, codeHash: string, expiresAt: number): Promise<void> {
    await this.db.run(this.sql.invitationCode.upsert, [invitationId, codeHash, expiresAt]);
  }

  async consumeInvitationCode(invitationId: string, codeHash: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.invitationCode.consume, [now, invitationId, codeHash, now])) === 1;
  }

  // ── membership invitations ────────────────────────────────────────────────────────────────

  async createMemberInvitation(invitation: Omit<MemberInvitation, "orgName">): Promise<void> {
    const i = invitation;
    await this.db.run(this.sql.memberInvitation.insert, [i.id, i.orgId, i.email.toLowerCase(), i.role, i.invitedBy, i.createdAt, i.expiresAt]);
  }

  async listMemberInvitations(orgId: string): Promise<MemberInvitation[]> {
    return (await this.db.all(this.sql.memberInvitation.listByOrg, [orgId])).map(memberInvitationFrom);
  }

  async listMemberInvitationsForEmail(email: string, now: number): Promise<MemberInvitation[]> {
    return (await this.db.all(this.sql.memberInvitation.listByEmail, [email.toLowerCase(), now])).map(memberInvitationFrom);
  }

  async revokeMemberInvitation(orgId: string, id: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.memberInvitation.revoke, [now, id, orgId])) === 1;
  }

  async declineMemberInvitation(id: string, email: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.memberInvitation.decline, [now, id, email.toLowerCase()])) === 1;
  }

  acceptMemberInvitation(id: string, user: { id: string; email: string }, now: number): Promise<{ orgId: string; role: MemberRole } | null> {
    return this.db.transaction(async (tx) => {
      const accepted = await tx.get(this.sql.memberInvitation.accept, [now, user.id, id, user.email.toLowerCase(), now]);
      if (!accepted) return null;
      const orgId = accepted.org_id as string;
      await tx.get(this.sql.organisation.lock, [orgId]);
      await tx.run(this.sql.memberInvitation.insertMember, [orgId, user.id, accepted.role as string, now]);
      const role = (await this.membershipOf(tx, orgId, user.id)) ?? (accepted.role as MemberRole);
      return { orgId, role };
    });
  }

  // ── refresh-token families ────────────────────────────────────────────────────────────────

  async insertRefreshToken(
    token: { tokenHash: string; familyId: string; userId: string; orgId: string; expiresAt: number; conversationScope?: string | null },
    now: number,
  ): Promise<void> {
    await this.db.run(this.sql.refreshToken.insert, [token.tokenHash, token.familyId, token.userId, token.orgId, now, token.expiresAt, token.conversationScope ?? null]);
  }

  rotateRefreshToken(tokenHash: string, nextHash: string, nextExpiresAt: number, now: number, reuseGraceMs: number): Promise<RefreshOutcome> {
    return this.db.transaction(async (tx): Promise<RefreshOutcome> => {
      const successorOf = async (row: SqlRow, retried: boolean): Promise<RefreshOutcome> => {
        const familyId = row.family_id as string;
        const userId = row.user_id as string;
        const orgId = row.org_id as string;
        // A scoped session stays scoped: the next token carries the same conversation.
        const conversationScope = (row.conversation_scope ?? null) as string | null;
        await tx.run(this.sql.refreshToken.insert, [nextHash, familyId, userId, orgId, now, nextExpiresAt, conversationScope]);
        return { status: "rotated", userId, orgId, familyId, conversationScope, retried };
      };
      const spent = await tx.get(this.sql.refreshToken.spend, [now, nextHash, tokenHash, now]);
      if (spent) return successorOf(spent, false);
      // Not spendable: find out why. Only a token already spent is a replay worth a revocation.
      const row = await tx.get(this.sql.refreshToken.select, [tokenHash]);
      if (!row) return { status: "invalid" };
      const familyId = row.family_id as string;
      const userId = row.user_id as string;
      if (await tx.get(this.sql.revokedFamily.exists, [familyId])) return { status: "invalid" };
      if (row.rotated_at === null) return { status: "invalid" }; // expired
      if (await this.retryWithinGrace(tx, row, tokenHash, nextHash, now, reuseGraceMs)) return successorOf(row, true);
      await tx.run(this.sql.revokedFamily.insert, [familyId, userId, now, "refresh token reused"]);
      return { status: "reused", familyId, userId };
    });
  }

  /**
   * A spent token's one retry: granted within the grace of its rotation, while the token itself
   * is unexpired, and only if its successor was never used (then the client cannot have had the
   * answer). The successor is retired first; both changes are conditional, so of two retries
   * racing exactly one is granted and the other is a reuse.
   */
  private async retryWithinGrace(tx: SqlRunner, row: SqlRow, tokenHash: string, nextHash: string, now: number, reuseGraceMs: number): Promise<boolean> {
    const successor = row.successor_hash as string | null;
    const rotatedAt = Number(row.rotated_at);
    if (reuseGraceMs <= 0 || successor === null || row.grace_used_at !== null || now - rotatedAt > reuseGraceMs || Number(row.expires_at) <= now) return false;
    if ((await tx.run(this.sql.refreshToken.retireUnused, [now, now, successor, now])) !== 1) return false;
    return (await tx.run(this.sql.refreshToken.takeGrace, [now, nextHash, tokenHash, successor])) === 1;
  }

  async revokeFamily(familyId: string, userId: string, reason: string, now: number): Promise<void> {
    await this.db.run(this.sql.revokedFamily.insert, [familyId, userId, now, reason]);
  }

  revokeUserSessions(userId: string, reason: string, now: number): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      const families = (await tx.all(this.sql.refreshToken.familiesOfUser, [userId])).map((r) => r.family_id as string);
      for (const family of families) await tx.run(this.sql.revokedFamily.insert, [family, userId, now, reason]);
      return families;
    });
  }

  async isFamilyRevoked(familyId: string): Promise<boolean> {
    return (await this.db.get(this.sql.revokedFamily.exists, [familyId])) !== undefined;
  }

  // ── operator support access ───────────────────────────────────────────────────────────────

  async recordSupportGrant(grant: SupportGrant): Promise<void> {
    if (!(await this.getConversation(grant.conversationId))) throw new DirectoryError("not_found", `no conversation ${grant.conversationId}`);
    await this.db.run(this.sql.supportGrant.insert, [grant.id, grant.operator, grant.conversationId, grant.reason, grant.grantedAt, grant.expiresAt]);
  }

  async getSupportGrant(id: string): Promise<SupportGrant | null> {
    const row = await this.db.get(this.sql.supportGrant.select, [id]);
    return row ? supportGrantFrom(row) : null;
  }

  async listSupportGrants(conversationId: string): Promise<SupportGrant[]> {
    return (await this.db.all(this.sql.supportGrant.listByConversation, [conversationId])).map(supportGrantFrom);
  }

  async revokeSupportGrant(id: string, now: number): Promise<boolean> {
    return (await this.db.run(this.sql.supportGrant.revoke, [now, id])) === 1;
  }

  // ── deletion and retention ────────────────────────────────────────────────────────────────

  deleteConversationSide(conversationId: string, orgId: string, deletedBy: string, reason: string, now: number): Promise<ConversationParty[]> {
    const sql = LIFECYCLE_STATEMENTS.deletedSide;
    return this.db.transaction(async (tx) => {
      // Locked, so two parties deleting at once on two nodes both see the other's side go.
      if (!(await tx.get(this.sql.conversation.lock, [conversationId]))) throw new DirectoryError("not_found", "no such conversation");
      const parties = await this.partiesOf(tx, conversationId);
      if (!parties.some((p) => p.orgId === orgId)) throw new DirectoryError("not_found", "the organisation is not a party to this conversation");
      await tx.run(sql.insert, [conversationId, orgId, deletedBy, reason, now]);
      await tx.run(sql.removeGuests, [conversationId, conversationId, orgId]);
      await tx.run(sql.revokeInvitations, [now, conversationId, orgId]);
      return this.partiesOf(tx, conversationId);
    });
  }

  listConversationParties(conversationId: string): Promise<ConversationParty[]> {
    return this.partiesOf(this.db, conversationId);
  }

  private async partiesOf(q: SqlRunner, conversationId: string): Promise<ConversationParty[]> {
    return (await q.all(LIFECYCLE_STATEMENTS.parties, [conversationId, conversationId])).map(partyFrom);
  }

  async putLegalHold(hold: LegalHold): Promise<void> {
    if (!(await this.getConversation(hold.conversationId))) throw new DirectoryError("not_found", "no such conversation");
    await this.db.run(LIFECYCLE_STATEMENTS.legalHold.upsert, [hold.conversationId, hold.orgId, hold.setBy, hold.reason, hold.setAt]);
  }

  async removeLegalHold(conversationId: string, orgId: string): Promise<boolean> {
    return (await this.db.run(LIFECYCLE_STATEMENTS.legalHold.delete, [conversationId, orgId])) === 1;
  }

  async listLegalHolds(conversationId: string): Promise<LegalHold[]> {
    return (await this.db.all(LIFECYCLE_STATEMENTS.legalHold.list, [conversationId])).map(legalHoldFrom);
  }

  async removeConversationRecord(conversationId: string): Promise<boolean> {
    const removed = await this.db.transaction(async (tx) => {
      for (const statement of LIFECYCLE_STATEMENTS.removeConversation) await tx.run(statement, [conversationId]);
      return (await tx.run(LIFECYCLE_STATEMENTS.removeConversationRecord, [conversationId])) === 1;
    });
    if (removed) await this.dropOldPageImages();
    return removed;
  }

  async listConversationIds(after: string, limit: number): Promise<string[]> {
    return (await this.db.all(LIFECYCLE_STATEMENTS.listConversationIds, [after, limit])).map((r) => r.id as string);
  }

  async erasePerson(userId: string, now: number, condition?: { onlyMemberOf: string }): Promise<ErasedPerson> {
    const sql = LIFECYCLE_STATEMENTS.person;
    const erased = await this.db.transaction(async (tx): Promise<ErasedPerson> => {
      const row = await tx.get(this.sql.user.select, [userId]);
      if (!row) throw new DirectoryError("not_found", "no such person");
      const email = row.email as string;
      const memberships = await tx.all(this.sql.membership.listByUser, [userId]);
      if (condition && (memberships.length !== 1 || memberships[0].org_id !== condition.onlyMemberOf)) {
        throw new DirectoryError("not_found", "no such person");
      }
      for (const m of memberships) {
        if (m.role !== "owner") continue;
        await tx.get(this.sql.organisation.lock, [m.org_id as string]);
        const owners = Number((await tx.get(this.sql.membership.countOwners, [m.org_id as string]))?.n ?? 0);
        const members = Number((await tx.get(sql.countMembers, [m.org_id as string]))?.n ?? 0);
        if (owners <= 1 && members > 1) {
          // Which organisation stays unsaid: the caller may not be one of its members.
          throw new DirectoryError("invalid", "the person is the last owner of an organisation with other members: make someone else owner first");
        }
      }
      const families = (await tx.all(this.sql.refreshToken.familiesOfUser, [userId])).map((r) => r.family_id as string);
      for (const family of families) await tx.run(this.sql.revokedFamily.insert, [family, userId, now, "person erased"]);
      await tx.run(sql.deleteInvitationCodes, [userId, email]);
      await tx.run(sql.scrubInvitations, [erasedEmail(userId), now, userId, email]);
      await tx.run(sql.deleteMemberInvitations, [email]);
      await tx.run(sql.deletePendingSignups, [email]);
      for (const statement of [sql.deleteWebauthnCredentials, sql.deleteRecoveryCodes, sql.deleteRefreshTokens, sql.deleteMemberships, sql.deleteConversationPeople, sql.deleteApiKeys]) {
        await tx.run(statement, [userId]);
      }
      await tx.run(sql.scrub, [erasedEmail(userId), userId]);
      return { families, orgs: memberships.map((m) => m.org_id as string) };
    });
    await this.dropOldPageImages();
    return erased;
  }

  async recordDeletion(record: DeletionRecord): Promise<void> {
    await this.db.run(LIFECYCLE_STATEMENTS.sharedLedger.insert, [record.subject, record.id, record.reason, record.at]);
  }

  async listDeletions(): Promise<DeletionRecord[]> {
    return (await this.db.all(LIFECYCLE_STATEMENTS.sharedLedger.list)).map(deletionRecordFrom);
  }

  /**
   * SQLite keeps overwritten rows in its write-ahead log until a checkpoint: erased data must not
   * linger there (deleted pages in the main file are zeroed by `secure_delete`, see the worker).
   */
  private async dropOldPageImages(): Promise<void> {
    // Inside a transaction SQLite refuses a checkpoint; the audited change runs it after its commit.
    if (this.insideTransaction) return;
    if (this.db.dialect.name === "sqlite") await this.db.get("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  // ── audited changes ───────────────────────────────────────────────────────────────────────

  audited<K extends AuditedOperation>(op: K, args: Parameters<Directory[K]>, appends: readonly OrgAuditAppend[]): ReturnType<Directory[K]> {
    return this.runAudited([{ op, args } as AuditedStep], appends, false).then((outcome) =>
      outcome.changed ? outcome.results[0] : outcome.result,
    ) as ReturnType<Directory[K]>;
  }

  async auditedSteps(steps: readonly AuditedStep[], appends: readonly OrgAuditAppend[]): Promise<AuditedOutcome> {
    const outcome = await this.runAudited(steps, appends, true);
    return outcome.changed ? outcome : { changed: false, unchangedStep: outcome.unchangedStep };
  }

  /**
   * The steps and their entries in one transaction. A step that changed nothing appends nothing;
   * with `undoOnNoChange` it also rolls back the steps before it (they belong together).
   */
  private async runAudited(
    steps: readonly AuditedStep[],
    appends: readonly OrgAuditAppend[],
    undoOnNoChange: boolean,
  ): Promise<{ changed: true; results: unknown[] } | { changed: false; unchangedStep: number; result: unknown }> {
    for (const step of steps) {
      if (!(AUDITED_OPERATIONS as readonly string[]).includes(step.op)) throw new DirectoryError("invalid", `${String(step.op)} is not an audited operation`);
    }
    const undo = new UndoSignal();
    try {
      const outcome = await this.db.transaction(async (tx) => {
        // On the transaction's runner, so the change and the entries commit together (SQLite: the
        // runner is this one, its nested transactions join; Postgres: one connection).
        const inner = new SqlDirectory(tx, true) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
        const results: unknown[] = [];
        for (const [index, step] of steps.entries()) {
          const result = await inner[step.op](...(step.args as unknown[]));
          if (!changedSomething(step.op, result) && !step.optional) {
            undo.unchangedStep = index;
            undo.result = result;
            if (undoOnNoChange) throw undo;
            return { changed: false as const, unchangedStep: index, result };
          }
          results.push(result);
        }
        const log = new SqlAuditLog(tx);
        for (const a of appends) await log.appendOrgAuditEvent(a.org, a.event, a.now);
        return { changed: true as const, results };
      });
      // What an erasure overwrote leaves the write-ahead log only now that it committed.
      if (outcome.changed && steps.some((step) => ERASING_OPERATIONS.has(step.op))) await this.dropOldPageImages();
      return outcome;
    } catch (error) {
      if (error === undo) return { changed: false, unchangedStep: undo.unchangedStep, result: undo.result };
      throw error;
    }
  }
}

/** Audited operations that overwrite personal data or content (their old pages are dropped after commit). */
const ERASING_OPERATIONS: ReadonlySet<string> = new Set(["erasePerson", "removeConversationRecord"]);

/** Thrown inside an audited transaction to roll it back when a step changed nothing. */
class UndoSignal extends Error {
  unchangedStep = -1;
  result: unknown = null;
}

function webauthnFrom(row: Record<string, unknown>): WebauthnCredential {
  return {
    id: String(row.id),
    userId: String(row.user_id),
    name: String(row.name),
    publicKey: new Uint8Array(row.public_key as Uint8Array),
    counter: Number(row.counter),
    transports: JSON.parse(String(row.transports)) as string[],
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null || row.last_used_at === undefined ? null : Number(row.last_used_at),
  };
}
