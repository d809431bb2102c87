// The audit hash chain of a conversation, as pure functions over plain data: how an entry is
// hashed and linked to the one before it, and a verifier that walks a chain in order and names
// the first entry that does not hold. Both the stores (to write) and audits (to check) use this.

import { createHash, createHmac, createSecretKey, hash, type KeyObject } from "node:crypto";
import type { AuditEntry, EntryKind, LogEntry } from "./store.ts";

/** Version tag of the canonical encoding; bump it (and the genesis string) to change the format. */
export const AUDIT_FORMAT_VERSION = 1;

const GENESIS_PREFIX = "parley/audit/v1/genesis\0";

/** The fields of an entry that its hash covers (everything but the chain link itself). */
export type ChainFields = Omit<AuditEntry, "prevHash" | "hash">;

/** A chain position: the last verified entry, or a trusted checkpoint recorded elsewhere. */
export interface ChainHead {
  seq: number;
  hash: Uint8Array;
}

/** Outcome of verifying a chain: the head it reached, or the first entry that breaks it. */
export type ChainVerification =
  | { ok: true; entries: number; head: ChainHead }
  | { ok: false; seq: number; reason: string };

/** The audit key, accepted raw or pre-imported (importing once saves work on the hot path). */
export type AuditKey = Uint8Array | KeyObject;

/** Imports a raw audit key once so every HMAC after it skips the key setup. */
export function importAuditKey(key: Uint8Array): KeyObject {
  return createSecretKey(key);
}

/** The hash the first entry of a conversation links to: unique per conversation, so entries cannot be moved between chains. */
export function genesisHash(conversation: string): Uint8Array {
  return chainGenesis(GENESIS_PREFIX, conversation);
}

/**
 * The genesis hash of any chain: its kind's prefix and its id. Other chains (organisation audit
 * chains) use their own prefix so no entry of one kind of chain can pass for another.
 */
export function chainGenesis(prefix: string, chainId: string): Uint8Array {
  return createHash("sha256").update(prefix + chainId, "utf8").digest();
}

/** SHA-256(prevHash ‖ JSON(canonical)): the link of every chain, over its canonical field array. */
export function linkHash(prevHash: Uint8Array, canonical: readonly unknown[]): Uint8Array {
  // One buffer and a one-shot hash: a Hash object per entry cost a third more (once per append).
  const json = JSON.stringify(canonical);
  const input = Buffer.alloc(prevHash.byteLength + Buffer.byteLength(json, "utf8"));
  input.set(prevHash, 0);
  input.write(json, prevHash.byteLength, "utf8");
  return hash("sha256", input, "buffer");
}

/** HMAC-SHA256 of a payload: keyed so the audit trail does not let anyone confirm a guessed content. */
export function contentHmac(key: AuditKey, payload: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(payload).digest();
}

/** The bytes an entry's hash covers: a JSON array in fixed order, so no two entries encode alike. */
export function canonicalEntry(fields: ChainFields): Uint8Array {
  return Buffer.from(JSON.stringify(canonicalArray(fields)), "utf8");
}

/** SHA-256(prevHash ‖ canonicalEntry(fields)): the link that makes removal, insertion and edits visible. */
export function entryHash(prevHash: Uint8Array, fields: ChainFields): Uint8Array {
  return linkHash(prevHash, canonicalArray(fields));
}

function canonicalArray(f: ChainFields): unknown[] {
  return [AUDIT_FORMAT_VERSION, f.conversation, f.seq, f.at, f.user, f.org, f.session, f.kind, f.size, toHex(f.contentHmac)];
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function bytesEqual(a: Uint8Array | null | undefined, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

const ENTRY_KINDS: ReadonlySet<string> = new Set<EntryKind>(["update", "snapshot"]);

export interface ChainVerifierOptions {
  /**
   * Heads recorded outside the store (receipts, exports, published heads). The chain hash is
   * unkeyed so anyone can check it; that also means someone with write access to the store can
   * rewrite attribution and recompute every later hash. Checkpoints are what catch that.
   */
  checkpoints?: readonly ChainHead[];
  /**
   * False for an exported chain (attribution and hashes, no payloads, no audit key): the links,
   * hashes and checkpoints are checked, the content HMACs cannot be.
   */
  payloads?: boolean;
}

/**
 * Walks one conversation's entries in sequence order and stops at the first that breaks the
 * chain. Feed it page by page with `push`, then read `result()`; it holds only the last link.
 */
export class ChainVerifier {
  private readonly key: KeyObject;
  private readonly checkpoints = new Map<number, Uint8Array>();
  private readonly payloads: boolean;
  private prevHash: Uint8Array;
  private prevSeq = 0;
  private prevAt = Number.NEGATIVE_INFINITY;
  private count = 0;
  private failure: { seq: number; reason: string } | null = null;

  constructor(
    readonly conversation: string,
    auditKey: AuditKey,
    options: ChainVerifierOptions = {},
  ) {
    this.key = auditKey instanceof Uint8Array ? importAuditKey(auditKey) : auditKey;
    this.prevHash = genesisHash(conversation);
    this.payloads = options.payloads ?? true;
    for (const c of options.checkpoints ?? []) this.checkpoints.set(c.seq, c.hash);
  }

  /** Checks the next entry; returns false (and ignores everything after) once the chain is broken. */
  push(entry: LogEntry): boolean {
    if (this.failure) return false;
    const reason = this.check(entry);
    if (reason) {
      // Reported at the position that breaks: for a missing entry that is the missing seq,
      // not the one that follows it.
      this.failure = { seq: this.prevSeq + 1, reason };
      return false;
    }
    this.prevHash = entry.hash;
    this.prevSeq = entry.seq;
    this.prevAt = entry.at;
    this.count++;
    return true;
  }

  /** Fails the chain from outside, e.g. when the store says its head is past the last entry read. */
  fail(seq: number, reason: string): void {
    if (!this.failure) this.failure = { seq, reason };
  }

  /** The head reached so far (seq 0 and the genesis hash before any entry). */
  get head(): ChainHead {
    return { seq: this.prevSeq, hash: this.prevHash };
  }

  result(): ChainVerification {
    return chainResult(this.failure, this.checkpoints.keys(), this.count, this.head);
  }

  private check(e: LogEntry): string | null {
    if (e.conversation !== this.conversation) return `entry belongs to conversation ${JSON.stringify(e.conversation)}`;
    const link = linkProblem({ seq: this.prevSeq, hash: this.prevHash }, e, "conversation");
    if (link) return link;
    if (!ENTRY_KINDS.has(e.kind)) return `unknown entry kind ${JSON.stringify(e.kind)}`;
    if (!Number.isSafeInteger(e.at) || e.at < this.prevAt) return "timestamp goes backwards";
    if (!bytesEqual(e.hash, entryHash(this.prevHash, e))) return "hash does not recompute from the entry";
    if (this.payloads) {
      if (!e.payload) return `${e.kind} payload is missing`;
      if (e.payload.byteLength !== e.size) return `payload is ${e.payload.byteLength} bytes, entry says ${e.size}`;
      if (!bytesEqual(e.contentHmac, contentHmac(this.key, e.payload))) return "contentHmac does not match the payload";
    }
    const checkpoint = this.checkpoints.get(e.seq);
    if (checkpoint && !bytesEqual(e.hash, checkpoint)) return "hash differs from the trusted checkpoint (chain rewritten at or before this seq)";
    return null;
  }
}

/**
 * The outcome of a walk: its first failure, else a failure if it stopped short of a trusted
 * checkpoint (entries cut off the end), else success at the head reached.
 */
export function chainResult(
  failure: { seq: number; reason: string } | null,
  checkpointSeqs: Iterable<number>,
  entries: number,
  head: ChainHead,
): ChainVerification {
  if (failure) return { ok: false, ...failure };
  for (const seq of checkpointSeqs) {
    if (seq > head.seq) return { ok: false, seq: head.seq + 1, reason: `chain ends at seq ${head.seq}, before trusted checkpoint seq ${seq}` };
  }
  return { ok: true, entries, head };
}

/**
 * Why an entry does not follow the head before it (a missing, repeated or reordered seq, or a
 * prevHash that is not the head's hash), or null. Shared by every kind of chain.
 */
export function linkProblem(prev: ChainHead, e: { seq: number; prevHash: Uint8Array }, chainKind: string): string | null {
  const expected = prev.seq + 1;
  if (e.seq !== expected) {
    return e.seq > expected ? `seq ${expected} is missing (next entry is seq ${e.seq})` : `seq ${e.seq} out of order (expected seq ${expected})`;
  }
  if (!bytesEqual(e.prevHash, prev.hash)) {
    return expected === 1 ? `prevHash is not the ${chainKind}'s genesis hash` : `prevHash does not match the hash of seq ${prev.seq}`;
  }
  return null;
}

/** Verifies a whole chain held in memory; see {@link ChainVerifier} for streaming. */
export function verifyChain(
  conversation: string,
  entries: Iterable<LogEntry>,
  auditKey: AuditKey,
  options?: ChainVerifierOptions,
): ChainVerification {
  const verifier = new ChainVerifier(conversation, auditKey, options);
  for (const e of entries) if (!verifier.push(e)) break;
  return verifier.result();
}
