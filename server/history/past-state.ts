// A conversation's Yjs state as it was at a past sequence number or moment, rebuilt from the log
// alone: the latest snapshot at or before that point plus the updates after it, never from later
// state. Reads go through the store in bounded pages, so a huge conversation costs several short
// turns of the event loop rather than one long one.

import * as Y from "yjs";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import type { LogEntry, Store } from "../store/store.ts";

/** A point in a conversation's history: a sequence number or a moment (ms since the epoch). */
export type HistoryPoint = { seq: number } | { at: number };

/** The state at a point, and which log entry it reflects. */
export interface PastState {
  /** Merged Yjs update of everything up to and including `seq`. */
  state: Uint8Array;
  /** Last log entry included (0: before the first change, the empty document). */
  seq: number;
  /** Commit time of that entry, or null for seq 0. */
  at: number | null;
}

// Entries read per store call. Snapshots are taken every PARLEY_COMPACT_AFTER_UPDATES updates, so
// finding the one before a point takes a few pages at most.
const PAGE = 256;
// Updates folded into the running state at a time, so a long tail never holds thousands of arrays.
const MERGE_EVERY = 512;
const EMPTY_UPDATE: Uint8Array = new Uint8Array([0, 0]);

/** The entry with sequence number `seq` (sequence numbers are contiguous from 1). */
async function entryAt(store: Store, conversation: string, seq: number): Promise<LogEntry> {
  const [entry] = await store.readEntries(conversation, seq - 1, 1);
  if (!entry || entry.seq !== seq) throw new ParleyError(ErrorCode.Internal, `log entry ${seq} is missing`);
  return entry;
}

/**
 * The last sequence number committed at or before `at` (0 when none was), by binary search over
 * commit times: the store guarantees they never decrease along the log.
 */
export async function seqAtMoment(store: Store, conversation: string, at: number, headSeq: number): Promise<number> {
  let low = 0;
  let high = headSeq;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if ((await entryAt(store, conversation, mid)).at <= at) low = mid;
    else high = mid - 1;
  }
  return low;
}

/**
 * Entries from the latest snapshot at or before `seq` up to `seq`: windows are read backwards from
 * `seq` until one holds a snapshot (or the log's start is reached).
 */
async function entriesSinceSnapshot(store: Store, conversation: string, seq: number): Promise<LogEntry[]> {
  const windows: LogEntry[][] = [];
  let end = seq;
  while (end > 0) {
    const start = Math.max(0, end - PAGE);
    const window = await store.readEntries(conversation, start, end - start);
    const snapshot = window.findLastIndex((entry) => entry.kind === "snapshot");
    windows.unshift(snapshot >= 0 ? window.slice(snapshot) : window);
    if (snapshot >= 0) break;
    end = start;
  }
  return windows.flat();
}

/** Rebuilds the state at `seq` (0 <= seq <= head) from the log. */
export async function stateAtSeq(store: Store, conversation: string, seq: number): Promise<PastState> {
  if (seq === 0) return { state: EMPTY_UPDATE, seq: 0, at: null };
  const entries = await entriesSinceSnapshot(store, conversation, seq);
  let state: Uint8Array = EMPTY_UPDATE;
  let pending: Uint8Array[] = [];
  for (const entry of entries) {
    // A payload can be gone (destroyed data); only a later snapshot makes up for it.
    if (!entry.payload) throw new ParleyError(ErrorCode.NotFound, `the content at seq ${entry.seq} is no longer available`);
    if (entry.kind === "snapshot") {
      state = entry.payload;
      pending = [];
      continue;
    }
    pending.push(entry.payload);
    if (pending.length >= MERGE_EVERY) {
      state = Y.mergeUpdates([state, ...pending]);
      pending = [];
      // Let other requests run between folds of a long tail.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  if (pending.length > 0) state = Y.mergeUpdates([state, ...pending]);
  const last = entries[entries.length - 1];
  if (!last || last.seq !== seq) throw new ParleyError(ErrorCode.Internal, `log entry ${seq} is missing`);
  return { state, seq, at: last.at };
}

/** Rebuilds the state at a point; `headSeq` is the conversation's latest sequence number. */
export async function stateAt(store: Store, conversation: string, point: HistoryPoint, headSeq: number): Promise<PastState> {
  if ("seq" in point) {
    if (point.seq > headSeq) throw new ParleyError(ErrorCode.InvalidRequest, `seq: beyond the conversation's latest change (${headSeq})`);
    return stateAtSeq(store, conversation, point.seq);
  }
  return stateAtSeq(store, conversation, await seqAtMoment(store, conversation, point.at, headSeq));
}
