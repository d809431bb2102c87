// The messages between SqliteStore (event loop thread) and its worker thread: which operations
// exist, what a request and a reply look like, and what the worker hands over at start-up.
// Both sides import these types so an operation cannot drift between caller and executor.

import type { MasterKeyring } from "../../crypto/master-key.ts";
import type { AppendRequest, ClientIdRecord, CommittedAppend, CompactionResult, ConversationChainHead, DocumentState, LogEntry } from "../store.ts";
import type { StoreErrorCode } from "../../sql/store-error.ts";

/** The operations the worker runs, synchronously, one at a time, in arrival order. */
export interface SqliteOps {
  appendBatch(requests: readonly AppendRequest[]): CommittedAppend[];
  /** appendBatch over a batch packed by packed-batch.ts; answers the packed results (both buffers are moved). */
  appendPacked(batch: ArrayBuffer): ArrayBuffer;
  loadDocument(conversation: string): DocumentState;
  readUpdatesSince(conversation: string, afterSeq: number): { seq: number; payload: Uint8Array }[];
  readEntries(conversation: string, afterSeq: number, limit: number): LogEntry[];
  listChainHeads(sinceMs: number): ConversationChainHead[];
  listClientIds(conversation: string): ClientIdRecord[];
  lastActivity(conversations: readonly string[]): [string, number][];
  compact(conversation: string): CompactionResult | null;
  destroyConversation(conversation: string): boolean;
  ping(): boolean;
  close(): void;
}

export type OpName = keyof SqliteOps;

export const OP_NAMES: ReadonlySet<string> = new Set<OpName>([
  "appendBatch",
  "appendPacked",
  "loadDocument",
  "readUpdatesSince",
  "readEntries",
  "listChainHeads",
  "listClientIds",
  "lastActivity",
  "compact",
  "destroyConversation",
  "ping",
  "close",
]);

/** Event loop → worker. */
export interface OpRequest<K extends OpName = OpName> {
  id: number;
  op: K;
  args: Parameters<SqliteOps[K]>;
}

/** A failure as it crosses the thread boundary (class identity does not survive cloning). */
export interface SerializedError {
  code: StoreErrorCode;
  message: string;
}

/** Worker → event loop. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: SerializedError };

/** Handed to the worker at spawn time. */
export interface SqliteWorkerData {
  /** The worker module (worker.ts from source, worker.js compiled) the bootstrap loads. */
  moduleUrl: string;
  path: string;
  auditKey: Uint8Array;
  masterKeys: MasterKeyring;
  keyringPath?: string;
  synchronous: "full" | "normal";
  busyTimeoutMs: number;
}
