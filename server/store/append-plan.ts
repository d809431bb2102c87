// The chain logic of a commit, once for every backend: given the current heads of the batch's
// conversations, the requests, the audit key and the clock, it computes the rows to insert and the
// new heads. Pure over plain data; the backends only read heads, lock them and write the plan.

import { genesisHash, type ChainFields } from "./audit-chain.ts";
import type { EntryHasher } from "./entry-hasher.ts";
import type { Actor, AppendRequest, CommittedAppend, EntryKind } from "./store.ts";

/** The actor recorded on entries the server writes on its own (snapshots). */
export const SYSTEM_ACTOR: Actor = { user: "parley:system", org: "", session: "" };

/** Where a conversation's chain ends: the last entry's seq, hash and time. */
export interface ConversationHead {
  seq: number;
  hash: Uint8Array;
  at: number;
}

/** One log row to insert: the hashed fields, the chain link, and the payload to keep. */
export interface PlannedEntry extends ChainFields {
  prevHash: Uint8Array;
  hash: Uint8Array;
  /** The update bytes; null for snapshot entries, whose content lives in the snapshots table. */
  payload: Uint8Array | null;
}

export interface AppendPlan {
  /** Rows in request order (so each conversation's rows are in seq order). */
  entries: PlannedEntry[];
  /** One per request, in request order. */
  committed: CommittedAppend[];
  /** The new head of every conversation in the batch. */
  heads: Map<string, ConversationHead>;
}

/** The head before a conversation's first entry. */
export function genesisHead(conversation: string): ConversationHead {
  return { seq: 0, hash: genesisHash(conversation), at: 0 };
}

/** The batch's conversations, each once, sorted: the order every backend locks heads in. */
export function conversationsOf(requests: readonly AppendRequest[]): string[] {
  return [...new Set(requests.map((r) => r.conversation))].sort();
}

/**
 * Chains every request after its conversation's head. `heads` holds the current head of each
 * conversation that has one (missing means a new conversation); it is not modified. The
 * hasher is the store's own (one per thread: it reuses its buffers).
 */
export function planAppends(
  requests: readonly AppendRequest[],
  heads: ReadonlyMap<string, ConversationHead>,
  hasher: EntryHasher,
  now: number,
): AppendPlan {
  const next = new Map<string, ConversationHead>();
  const entries: PlannedEntry[] = new Array(requests.length);
  const committed: CommittedAppend[] = new Array(requests.length);
  for (let i = 0; i < requests.length; i++) {
    const { conversation, actor, payload } = requests[i];
    const head = next.get(conversation) ?? heads.get(conversation) ?? genesisHead(conversation);
    const entry = chainEntry(head, conversation, "update", actor, payload, payload, hasher, now);
    // The entry is its conversation's head until the next one (its seq, hash and at): no copy.
    next.set(conversation, entry);
    entries[i] = entry;
    committed[i] = { conversation, seq: entry.seq, at: entry.at };
  }
  return { entries, committed, heads: next };
}

/**
 * The `snapshot` entry recording a compaction. Its HMAC covers the merged state, so a tampered
 * snapshot breaks the chain like a tampered update does.
 */
export function planSnapshot(
  conversation: string,
  head: ConversationHead,
  state: Uint8Array,
  hasher: EntryHasher,
  now: number,
): { entry: PlannedEntry; head: ConversationHead } {
  const entry = chainEntry(head, conversation, "snapshot", SYSTEM_ACTOR, state, null, hasher, now);
  return { entry, head: headAfter(entry) };
}

const NO_HASH = new Uint8Array(0);

function chainEntry(
  head: ConversationHead,
  conversation: string,
  kind: EntryKind,
  actor: Actor,
  content: Uint8Array,
  payload: Uint8Array | null,
  hasher: EntryHasher,
  now: number,
): PlannedEntry {
  const entry: PlannedEntry = {
    conversation,
    seq: head.seq + 1,
    // Never earlier than the entry before: a clock step back must not make the chain lie.
    at: Math.max(now, head.at),
    user: actor.user,
    org: actor.org,
    session: actor.session,
    kind,
    size: content.byteLength,
    contentHmac: hasher.contentHmac(content),
    prevHash: head.hash,
    hash: NO_HASH,
    payload,
  };
  // The hash covers the ChainFields of the entry only (see canonicalEntry), not the link or payload.
  entry.hash = hasher.entryHash(head.hash, entry);
  return entry;
}

function headAfter(entry: PlannedEntry): ConversationHead {
  return { seq: entry.seq, hash: entry.hash, at: entry.at };
}
