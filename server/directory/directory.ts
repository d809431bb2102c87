// The directory seam: who exists, who belongs where, and who may see which conversation. Two
// backends keep the same promises: SQLite (one node; a file served by a worker thread) and
// Postgres (several nodes sharing one database). openDirectory() in open-directory.ts picks one.

import type { WorkerThread } from "../sql/worker-service.ts";
import type { OrgAuditEvent } from "./org-chain.ts";
import type { AccessDirectory } from "./access-directory.ts";
import type { AccountDirectory } from "./account-directory.ts";
import type { ConversationDirectory } from "./conversation-directory.ts";
import type { InvitationDirectory } from "./invitation-directory.ts";
import type { OrganisationDirectory } from "./organisation-directory.ts";
import type { RetentionDirectory } from "./retention-directory.ts";
import type { SessionDirectory } from "./session-directory.ts";

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
 * Every directory operation, asynchronous, with the same meaning on every backend, grouped by
 * aggregate (each its own interface and file; a consumer depends on the ones it uses). Times
 * (`now`, `expiresAt`) are the caller's milliseconds, so tests can move the clock. Operations that
 * change several rows are one transaction; the replay-sensitive ones (TOTP steps, recovery and
 * invitation codes, refresh rotation, binding an invitation) succeed for exactly one caller
 * when several nodes race on the same row.
 */
export interface Directory
  extends AccountDirectory,
    OrganisationDirectory,
    ConversationDirectory,
    AccessDirectory,
    InvitationDirectory,
    SessionDirectory,
    RetentionDirectory,
    AuditedChanges {}

/** Changes committed atomically with their organisation audit entries (see {@link Directory}). */
export interface AuditedChanges {
  /**
   * Runs one mutating operation and appends `appends` to their organisations' audit chains in
   * the same transaction: both happen or neither does, whatever crashes when. The entries are
   * appended only when the operation changed something (see {@link changedSomething});
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

/**
 * {@link AuditedChanges.audited} limited to some operations: what a consumer that makes only those
 * changes depends on (the membership routes put and remove members, nothing else).
 */
export interface AuditedChangesOf<K extends AuditedOperation> {
  // A function-typed property, not a generic method: TypeScript checks its `op` contravariantly,
  // so a consumer limited to some operations cannot be handed to a change of another.
  audited: (op: K, args: Parameters<Directory[K]>, appends: readonly OrgAuditAppend[]) => ReturnType<Directory[K]>;
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
  "issueRecoveryCodesIfNone",
  "removeRecoveryCodesWithoutSecondFactor",
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
  "confirmPendingSignup",
  "consumeInvitationCode",
  "createUser",
] as const satisfies readonly (keyof Directory)[];

export type AuditedOperation = (typeof AUDITED_OPERATIONS)[number];

/**
 * Whether an audited operation's result says it changed what its entries record: anything but
 * `false` or `null`, except a sign-up confirmed after its address got an account (`{status:
 * "exists"}`), which spends the link but creates no organisation, so its entry has no chain to go in.
 */
export function changedSomething(op: AuditedOperation, result: unknown): boolean {
  if (result === false || result === null) return false;
  if (op === "confirmPendingSignup") return (result as { status?: string }).status === "created";
  return true;
}

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
  "issueRecoveryCodesIfNone",
  "removeRecoveryCodesWithoutSecondFactor",
  "consumeRecoveryCode",
  "countRecoveryCodes",
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
  /** The worker threads it runs on (SQLite: one; Postgres: none), for /healthz. */
  readonly workers: readonly WorkerThread[];
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
