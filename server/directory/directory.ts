// The directory seam: who exists, who belongs where, and who may see which conversation. Two
// backends keep the same promises: SQLite (one node; a file served by a worker thread) and
// Postgres (several nodes sharing one database). openDirectory() in open-directory.ts picks one.

import type { OrgAuditEvent } from "./org-chain.ts";
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

/**
 * Why a directory operation could not be done; `code` is stable and maps onto HTTP statuses:
 * conflict 409, not_found 404, invalid 400, unavailable 503 (the database or its worker is gone:
 * nothing was changed, try again later).
 */
export class DirectoryError extends Error {
  override readonly name = "DirectoryError";
  constructor(
    readonly code: "conflict" | "not_found" | "invalid" | "unavailable",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Every directory operation, asynchronous, with the same meaning on every backend. Times (`now`,
 * `expiresAt`) are the caller's milliseconds, so tests can move the clock. Operations that
 * change several rows are one transaction; the replay-sensitive ones (TOTP steps, recovery and
 * invitation codes, refresh rotation, binding an invitation) succeed for exactly one caller
 * when several nodes race on the same row.
 */
export interface Directory {
  // ── people and organisations ──────────────────────────────────────────────────────────────

  /** Sign-up: a new organisation with its first member as owner. `conflict` when the email exists. */
  createOrganisationWithOwner(
    org: { id: string; name: string },
    user: { id: string; email: string; name: string; passwordHash: string },
    now: number,
  ): Promise<void>;
  /** A person with their own (personal) organisation, e.g. an invited supplier's first sign-in. `conflict` when the email exists. */
  createUser(
    user: { id: string; email: string; name: string; passwordHash: string | null },
    personalOrg: { id: string; name: string },
    now: number,
  ): Promise<void>;
  /** A sign-up awaiting its mailbox's confirmation (no account yet); expired ones are purged on the way. */
  createPendingSignup(signup: PendingSignup & { tokenHash: string }, now: number): Promise<void>;
  /** The live (unexpired, unconfirmed) sign-up behind a link, or null. */
  getPendingSignup(tokenHash: string, now: number): Promise<PendingSignup | null>;
  /**
   * Confirms a sign-up once, in one transaction: spends the link and creates the organisation with
   * its owner; `exists` (the link spent, nothing created) when the address got an account
   * meanwhile; null when the link is unknown, expired or already used.
   */
  confirmPendingSignup(tokenHash: string, ids: { userId: string; orgId: string }, now: number): Promise<ConfirmedSignup | null>;
  getUser(id: string): Promise<User | null>;
  /** Emails compare case-insensitively (stored lowercased). */
  getUserByEmail(email: string): Promise<User | null>;
  setPasswordHash(userId: string, hash: string): Promise<void>;
  /** Stores a (pending or enabled) sealed TOTP secret, or clears it. Resets the replay guard. */
  setTotp(userId: string, sealed: Uint8Array | null, enabled: boolean): Promise<void>;
  /** Turns on a confirmed TOTP secret (the step used to confirm it stays spent). */
  enableTotp(userId: string): Promise<void>;
  /** Records a used TOTP step; false if that step (or a later one) was already used. */
  consumeTotpStep(userId: string, step: number): Promise<boolean>;
  /** Replaces a person's recovery codes (hashes) with a fresh set. */
  replaceRecoveryCodes(userId: string, hashes: string[]): Promise<void>;
  /** Uses a recovery code once; false when unknown or already used. */
  consumeRecoveryCode(userId: string, hash: string, now: number): Promise<boolean>;
  getOrganisation(id: string): Promise<Organisation | null>;
  /** Changes the given settings only. `not_found` for an unknown organisation. */
  updateOrganisation(id: string, changes: { name?: string; require2fa?: boolean; ipAllowlist?: string[]; retentionDays?: number; requireSecurityKey?: boolean }): Promise<void>;
  /** The organisations a person belongs to, oldest membership first. */
  listMemberships(userId: string): Promise<Membership[]>;
  /** A person's role in an organisation, or null when not a member. */
  getMembership(orgId: string, userId: string): Promise<MemberRole | null>;
  listMembers(orgId: string): Promise<OrganisationMember[]>;
  /** Every organisation's id (server-wide notices: a failed backup concerns everyone). */
  listOrganisationIds(): Promise<string[]>;
  /** Stores a newly registered security key (`conflict` if the credential id is taken). */
  addWebauthnCredential(credential: Omit<WebauthnCredential, "lastUsedAt">): Promise<void>;
  listWebauthnCredentials(userId: string): Promise<WebauthnCredential[]>;
  getWebauthnCredential(id: string): Promise<WebauthnCredential | null>;
  /** Records a use with the authenticator's new counter; false when the counter went backwards (a clone). */
  useWebauthnCredential(id: string, counter: number, now: number): Promise<boolean>;
  renameWebauthnCredential(userId: string, id: string, name: string): Promise<boolean>;
  removeWebauthnCredential(userId: string, id: string): Promise<boolean>;
  /** Adds a member or changes their role. `invalid` when that would demote the last owner. */
  putMember(orgId: string, userId: string, role: MemberRole, now: number): Promise<void>;
  /** Removes a member; false when not a member. `invalid` for the last owner: an organisation keeps one. */
  removeMember(orgId: string, userId: string): Promise<boolean>;

  // ── API keys ──────────────────────────────────────────────────────────────────────────────

  /** Stores a new key; only the secret's hash is kept. */
  createApiKey(key: { id: string; orgId: string; name: string; scopes: string[]; secretHash: string; createdBy: string }, now: number): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  listApiKeys(orgId: string): Promise<ApiKeyRecord[]>;
  /** False when the key is not the organisation's or already revoked. */
  revokeApiKey(orgId: string, id: string, now: number): Promise<boolean>;
  /** Records use, at most once a minute per key (a write per request would be wasted I/O). */
  touchApiKey(id: string, now: number): Promise<void>;

  // ── conversations (the access side; content lives in the log store) ───────────────────────

  /** A new open conversation with its participant organisations. `not_found` for an unknown organisation. */
  createConversation(
    conversation: { id: string; orgId: string; title: string; externalRef: string | null; createdBy: string },
    participants: { orgId: string; role: ParticipantRole }[],
    now: number,
  ): Promise<void>;
  getConversation(id: string): Promise<ConversationRecord | null>;
  /**
   * Conversations visible to an accessor, newest first, paged by a (createdAt, id) cursor:
   * started by its organisation, joined by its organisation, or (for people) invited to. A
   * person who is no longer a member of the organisation they act for sees none.
   */
  listConversations(
    accessor: Accessor,
    options: { before?: { createdAt: number; id: string }; limit: number; externalRef?: string },
  ): Promise<ConversationRecord[]>;
  setConversationStatus(id: string, status: ConversationState): Promise<void>;
  listParticipants(conversationId: string): Promise<ConversationParticipant[]>;
  /** Adds a participant organisation or changes its role. `not_found` for an unknown organisation. */
  putParticipant(conversationId: string, orgId: string, role: ParticipantRole, now: number): Promise<void>;
  removeParticipant(conversationId: string, orgId: string): Promise<boolean>;
  listPeople(conversationId: string): Promise<ConversationPerson[]>;
  /** Adds an individually invited person or changes their role. */
  putPerson(conversationId: string, userId: string, role: ParticipantRole, now: number): Promise<void>;
  removePerson(conversationId: string, userId: string): Promise<boolean>;
  /**
   * The accessor's current role in a conversation, or null (which callers answer as 404):
   * members of the starting organisation write; participant organisations' members and invited
   * people get their recorded role (the better of the two); a person must still be a member of
   * the organisation they act for. A closed conversation is read-only for everyone.
   */
  accessRole(conversationId: string, accessor: Accessor): Promise<AccessLevel | null>;

  // ── invitations ───────────────────────────────────────────────────────────────────────────

  /** Stores an invitation; only its token's hash is kept. The email is stored lowercased. */
  createInvitation(invitation: Omit<InvitationRecord, "revokedAt" | "userId" | "deviceHash"> & { tokenHash: string }): Promise<void>;
  getInvitationByTokenHash(tokenHash: string): Promise<InvitationRecord | null>;
  getInvitation(id: string): Promise<InvitationRecord | null>;
  listInvitations(conversationId: string): Promise<InvitationRecord[]>;
  /** False when unknown or already revoked. */
  revokeInvitation(id: string, now: number): Promise<boolean>;
  /** First use: binds the invitation to a person and a device and adds the person to the conversation; false when already bound. */
  bindInvitation(id: string, userId: string, deviceHash: string, now: number): Promise<boolean>;
  /** Stores an emailed second-device code (its hash); the same code again is renewed, unused. */
  addInvitationCode(invitationId: string, codeHash: string, expiresAt: number): Promise<void>;
  /** Uses an emailed code once, within its validity. */
  consumeInvitationCode(invitationId: string, codeHash: string, now: number): Promise<boolean>;

  // ── membership invitations (joining an organisation needs the person's consent) ──────────

  /** Stores a pending invitation of an address (stored lowercased) to become a member. */
  createMemberInvitation(invitation: Omit<MemberInvitation, "orgName">): Promise<void>;
  /** An organisation's pending invitations (expired ones included; the caller's clock decides). */
  listMemberInvitations(orgId: string): Promise<MemberInvitation[]>;
  /** The live invitations addressed to an email, with the inviting organisation's name. */
  listMemberInvitationsForEmail(email: string, now: number): Promise<MemberInvitation[]>;
  /** False when unknown, already used or revoked, or another organisation's (all alike). */
  revokeMemberInvitation(orgId: string, id: string, now: number): Promise<boolean>;
  /** The invited person says no; false when unknown, used, or addressed to someone else. */
  declineMemberInvitation(id: string, email: string, now: number): Promise<boolean>;
  /**
   * The invited person accepts, once, while the invitation is live and addressed to their email:
   * they become a member with its role (an existing membership is left as it is). Null otherwise.
   */
  acceptMemberInvitation(id: string, user: { id: string; email: string }, now: number): Promise<{ orgId: string; role: MemberRole } | null>;

  // ── refresh-token families ────────────────────────────────────────────────────────────────

  /**
   * Stores a refresh token (its hash) in a family (one sign-in). `conversationScope`: the one
   * conversation a session opened by an invitation link may reach (kept through rotation).
   */
  insertRefreshToken(
    token: { tokenHash: string; familyId: string; userId: string; orgId: string; expiresAt: number; conversationScope?: string | null },
    now: number,
  ): Promise<void>;
  /**
   * Rotates a refresh token: the presented one is spent and `nextHash` issued in its family. A
   * token presented twice means it was stolen (or replayed): the whole family is revoked.
   */
  rotateRefreshToken(tokenHash: string, nextHash: string, nextExpiresAt: number, now: number): Promise<RefreshOutcome>;
  /** Signs a session family out (idempotent). */
  revokeFamily(familyId: string, userId: string, reason: string, now: number): Promise<void>;
  /** Revokes every session family of a person; returns the family ids. */
  revokeUserSessions(userId: string, reason: string, now: number): Promise<string[]>;
  isFamilyRevoked(familyId: string): Promise<boolean>;

  // ── operator support access ───────────────────────────────────────────────────────────────

  /** Records a support grant before its token is issued: the record is the audit of the access. `not_found` for an unknown conversation. */
  recordSupportGrant(grant: SupportGrant): Promise<void>;
  getSupportGrant(id: string): Promise<SupportGrant | null>;
  listSupportGrants(conversationId: string): Promise<SupportGrant[]>;
  /** False when unknown or already revoked. */
  revokeSupportGrant(id: string, now: number): Promise<boolean>;

  // ── deletion and retention (decided in server/lifecycle/) ─────────────────────────────────

  /**
   * A party deletes its side of a conversation: from now on nobody acting for it has access, and
   * the guests it invited and its invitations go too. Idempotent. Returns the parties after the
   * change. `not_found` when the conversation is unknown or the organisation is not a party.
   */
  deleteConversationSide(conversationId: string, orgId: string, deletedBy: string, reason: string, now: number): Promise<ConversationParty[]>;
  /** The starting organisation and the participant organisations; empty when the conversation is unknown. */
  listConversationParties(conversationId: string): Promise<ConversationParty[]>;
  /** Places (or renews) a party's legal hold. `not_found` for an unknown conversation. */
  putLegalHold(hold: LegalHold): Promise<void>;
  /** Lifts a party's legal hold; false when it had none. */
  removeLegalHold(conversationId: string, orgId: string): Promise<boolean>;
  listLegalHolds(conversationId: string): Promise<LegalHold[]>;
  /** Removes a destroyed conversation's record and everything hanging off it; false when unknown. */
  removeConversationRecord(conversationId: string): Promise<boolean>;
  /** Conversation ids after `after` in id order, at most `limit` (what a sweep pages through). */
  listConversationIds(after: string, limit: number): Promise<string[]>;
  /**
   * Erases a person's personal data: email (replaced by a pseudonymous one), name, password,
   * TOTP, recovery codes, sessions, memberships, API keys they created, invitations addressed to
   * them. The row and its id stay, so audit entries go on naming a stable, meaningless id.
   * `not_found` for an unknown person; `invalid` when they are the last owner of an organisation
   * that has other members (ownership must pass on first; the refusal names no organisation).
   * With `onlyMemberOf`, erases only when that organisation is the person's one membership,
   * checked in the same transaction (`not_found` otherwise: nobody acts on an account through
   * an organisation it is not in, and another organisation's hold on it is none of theirs).
   */
  erasePerson(userId: string, now: number, condition?: { onlyMemberOf: string }): Promise<ErasedPerson>;
  /** Records a destruction in the ledger every node shares (idempotent). */
  recordDeletion(record: DeletionRecord): Promise<void>;
  /** Every destruction recorded, oldest first. */
  listDeletions(): Promise<DeletionRecord[]>;

  // ── audited changes ───────────────────────────────────────────────────────────────────────

  /**
   * Runs one mutating operation and appends `appends` to their organisations' audit chains in
   * the same transaction: both happen or neither does, whatever crashes when. The entries are
   * appended only when the operation changed something (a result other than `false` or `null`);
   * an operation that throws appends nothing. The chains' sequence numbers and hashes are
   * assigned under each chain head's lock, as by the audit log's own appends.
   */
  audited<K extends AuditedOperation>(op: K, args: Parameters<Directory[K]>, appends: readonly OrgAuditAppend[]): ReturnType<Directory[K]>;
  /**
   * Several operations as one audited change (two-factor turned on with its recovery codes, a
   * recovery code spent on the session it opens): they run in order in one transaction with
   * `appends`. A step that reports it changed nothing (`false` or `null`), unless `optional`,
   * undoes the steps before it and appends nothing; the answer then names that step. Otherwise every step's result, in order.
   */
  auditedSteps(steps: readonly AuditedStep[], appends: readonly OrgAuditAppend[]): Promise<AuditedOutcome>;
}

/** What an audited change of several steps did: everything (each step's result), or nothing (which step found nothing to change). */
export type AuditedOutcome = { changed: true; results: unknown[] } | { changed: false; unchangedStep: number };

/** One operation of an audited change and its arguments (see {@link Directory.auditedSteps}). */
export type AuditedStep = {
  [K in AuditedOperation]: {
    op: K;
    args: Parameters<Directory[K]>;
    /** Finding nothing to change is fine for this step (removing a person who already left): it undoes nothing. */
    optional?: boolean;
  };
}[AuditedOperation];

/** One entry for an organisation's audit chain, ready to append (personal data already hashed). */
export interface OrgAuditAppend {
  org: string;
  event: OrgAuditEvent;
  /** The action's time; the entry's is never earlier than the chain's previous entry. */
  now: number;
}

/** The operations whose change can be audited atomically through {@link Directory.audited}. */
export const AUDITED_OPERATIONS = [
  "putMember",
  "removeMember",
  "createApiKey",
  "revokeApiKey",
  "createMemberInvitation",
  "revokeMemberInvitation",
  "acceptMemberInvitation",
  "deleteConversationSide",
  "recordSupportGrant",
  "revokeSupportGrant",
  "insertRefreshToken",
  "enableTotp",
  "setTotp",
  "replaceRecoveryCodes",
  "consumeRecoveryCode",
  "addWebauthnCredential",
  "useWebauthnCredential",
  "renameWebauthnCredential",
  "removeWebauthnCredential",
  "createInvitation",
  "revokeInvitation",
  "bindInvitation",
  "putParticipant",
  "removeParticipant",
  "removePerson",
  "putLegalHold",
  "removeLegalHold",
  "erasePerson",
  "recordDeletion",
  "removeConversationRecord",
] as const satisfies readonly (keyof Directory)[];

export type AuditedOperation = (typeof AUDITED_OPERATIONS)[number];

/** Every operation of {@link Directory}, by name (what a worker thread or a wrapper forwards). */
export const DIRECTORY_OPERATIONS = [
  "createOrganisationWithOwner",
  "createUser",
  "createPendingSignup",
  "getPendingSignup",
  "confirmPendingSignup",
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
  "createMemberInvitation",
  "listMemberInvitations",
  "listMemberInvitationsForEmail",
  "revokeMemberInvitation",
  "declineMemberInvitation",
  "acceptMemberInvitation",
  "insertRefreshToken",
  "rotateRefreshToken",
  "revokeFamily",
  "revokeUserSessions",
  "isFamilyRevoked",
  "recordSupportGrant",
  "getSupportGrant",
  "listSupportGrants",
  "revokeSupportGrant",
  "deleteConversationSide",
  "listConversationParties",
  "putLegalHold",
  "removeLegalHold",
  "listLegalHolds",
  "removeConversationRecord",
  "listConversationIds",
  "erasePerson",
  "recordDeletion",
  "listDeletions",
  "listOrganisationIds",
  "addWebauthnCredential",
  "listWebauthnCredentials",
  "getWebauthnCredential",
  "useWebauthnCredential",
  "renameWebauthnCredential",
  "removeWebauthnCredential",
  "audited",
  "auditedSteps",
] as const satisfies readonly (keyof Directory)[];

// Compile-time check that the list names every operation: a new method must be added above.
type Unlisted = Exclude<keyof Directory, (typeof DIRECTORY_OPERATIONS)[number]>;
const everyOperationListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyOperationListed;

/** A running directory and how to stop it. */
export interface DirectoryHandle {
  directory: Directory;
  /** False once the backend is closed or (SQLite) its worker died. */
  alive(): boolean;
  /** Lets calls in flight finish, then releases the database. */
  close(): Promise<void>;
}

/** The name of one directory operation. */
export type DirectoryOperation = (typeof DIRECTORY_OPERATIONS)[number];

/**
 * A Directory whose every operation is `invoke(name, args)`: how a backend puts something between
 * callers and the real operations (a worker thread, error mapping, draining on close).
 */
export function forwardDirectory(invoke: (op: DirectoryOperation, args: unknown[]) => Promise<unknown>): Directory {
  const directory: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const op of DIRECTORY_OPERATIONS) directory[op] = (...args) => invoke(op, args);
  return directory as unknown as Directory;
}
