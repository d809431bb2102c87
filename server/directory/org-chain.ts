// The audit chain of an organisation (its account and access events), as pure functions over
// plain data: the entry shape, its canonical encoding and hash, and a verifier. Built on the
// conversation chain's primitives (../store/audit-chain.ts) with its own genesis prefix and tag, so
// an org entry can never pass for a conversation entry or for another organisation's.

import { bytesEqual, type ChainHead, type ChainVerification, chainGenesis, chainResult, linkHash, linkProblem } from "../store/audit-chain.ts";

/** Version tag of the org entry encoding; bump it (and the genesis prefix) to change the format. */
export const ORG_AUDIT_FORMAT = "parley/org-audit/v1";

const ORG_GENESIS_PREFIX = `${ORG_AUDIT_FORMAT}/genesis\0`;

/** Every kind of org event. Append only: verifiers of old exports must keep knowing every name. */
export const ORG_AUDIT_ACTIONS = [
  "login.succeeded",
  "login.failed",
  "2fa.enabled",
  "2fa.disabled",
  "2fa.recovery-code-used",
  "invitation.sent",
  "invitation.opened",
  "invitation.used",
  "invitation.revoked",
  "participant.added",
  "participant.removed",
  "member.role-changed",
  "member.removed",
  "api-key.created",
  "api-key.used",
  "api-key.revoked",
  "support.granted",
  "support.used",
  "support.revoked",
  "audit.exported",
  "conversation.deleted",
  "conversation.restored",
  "person.deleted",
  "retention.destroyed",
  "legal-hold.placed",
  "legal-hold.lifted",
  "member.invited",
  "member.invitation-revoked",
  "member.joined",
  "backup.verified",
  "backup.failed",
  "drill.passed",
  "drill.failed",
  "webauthn.registered",
  "webauthn.used",
  "webauthn.renamed",
  "webauthn.removed",
  "2fa.recovery-codes-issued",
  "2fa.recovery-codes-removed",
  "organisation.created",
] as const;

/** One kind of org event. */
export type OrgAuditAction = (typeof ORG_AUDIT_ACTIONS)[number];

/** A detail value: flat scalars only, so the canonical encoding has one form. */
export type OrgAuditDetail = string | number | boolean | null;

/** What happened, as the org chain records it: ids and keyed hashes only, never personal data in clear. */
export interface OrgAuditEvent {
  action: OrgAuditAction;
  /** Who did it: `user:<id>`, `api-key:<id>`, `operator:<hash>`, `system`, or a keyed hash (unknown people). */
  actor: string;
  /** What it was done to: a conversation, invitation, key, member id ("" when nothing). */
  target: string;
  details: Record<string, OrgAuditDetail>;
}

/** An org event as stored: its place in the organisation's chain. */
export interface OrgAuditEntry extends OrgAuditEvent {
  org: string;
  seq: number;
  /** Commit time, ms since the epoch, never earlier than the previous entry's. */
  at: number;
  prevHash: Uint8Array;
  hash: Uint8Array;
}

/** The hash the first entry of an organisation's chain links to. */
export function orgGenesisHash(org: string): Uint8Array {
  return chainGenesis(ORG_GENESIS_PREFIX, org);
}

/** Details as [key, value] pairs sorted by key: one encoding whatever order they were built in. */
export function canonicalDetails(details: Record<string, OrgAuditDetail>): [string, OrgAuditDetail][] {
  return Object.keys(details)
    .sort()
    .map((key) => [key, details[key]]);
}

/** SHA-256(prevHash ‖ canonical entry): the link of an org chain. */
export function orgEntryHash(prevHash: Uint8Array, e: Omit<OrgAuditEntry, "prevHash" | "hash">): Uint8Array {
  return linkHash(prevHash, [ORG_AUDIT_FORMAT, e.org, e.seq, e.at, e.action, e.actor, e.target, canonicalDetails(e.details)]);
}

/** Why a detail set cannot be recorded (nested values, non-finite numbers), or null. */
export function detailsProblem(details: Record<string, unknown>): string | null {
  for (const [key, value] of Object.entries(details)) {
    const ok = value === null || typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
    if (!ok) return `detail ${JSON.stringify(key)} must be a string, finite number, boolean or null`;
  }
  return null;
}

const ACTIONS: ReadonlySet<string> = new Set(ORG_AUDIT_ACTIONS);

/**
 * Walks one organisation's entries in order and stops at the first that breaks the chain; the
 * same contract as the conversation ChainVerifier (push page by page, then result()).
 */
export class OrgChainVerifier {
  private prev: ChainHead;
  private prevAt = Number.NEGATIVE_INFINITY;
  private count = 0;
  private failure: { seq: number; reason: string } | null = null;
  private readonly checkpoints = new Map<number, Uint8Array>();

  constructor(
    readonly org: string,
    options: { checkpoints?: readonly ChainHead[] } = {},
  ) {
    this.prev = { seq: 0, hash: orgGenesisHash(org) };
    for (const c of options.checkpoints ?? []) this.checkpoints.set(c.seq, c.hash);
  }

  push(e: OrgAuditEntry): boolean {
    if (this.failure) return false;
    const reason = this.check(e);
    if (reason) {
      this.failure = { seq: this.prev.seq + 1, reason };
      return false;
    }
    this.prev = { seq: e.seq, hash: e.hash };
    this.prevAt = e.at;
    this.count++;
    return true;
  }

  fail(seq: number, reason: string): void {
    if (!this.failure) this.failure = { seq, reason };
  }

  get head(): ChainHead {
    return this.prev;
  }

  result(): ChainVerification {
    return chainResult(this.failure, this.checkpoints.keys(), this.count, this.prev);
  }

  private check(e: OrgAuditEntry): string | null {
    if (e.org !== this.org) return `entry belongs to organisation ${JSON.stringify(e.org)}`;
    const link = linkProblem(this.prev, e, "organisation");
    if (link) return link;
    if (!ACTIONS.has(e.action)) return `unknown action ${JSON.stringify(e.action)}`;
    if (!Number.isSafeInteger(e.at) || e.at < this.prevAt) return "timestamp goes backwards";
    const details = detailsProblem(e.details);
    if (details) return details;
    if (!bytesEqual(e.hash, orgEntryHash(this.prev.hash, e))) return "hash does not recompute from the entry";
    const checkpoint = this.checkpoints.get(e.seq);
    if (checkpoint && !bytesEqual(e.hash, checkpoint)) return "hash differs from the trusted checkpoint (chain rewritten at or before this seq)";
    return null;
  }
}
