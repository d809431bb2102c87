// The Store seam: everything the server persists goes through this interface. The embedded
// default is SQLite in a worker thread (./sqlite/); Postgres (./postgres/) implements the same
// contract for several nodes. Every method is asynchronous so the event loop never waits on disk.

import type { WorkerThread } from "../sql/worker-service.ts";

/** Who did something: carried into every audit entry. */
export interface Actor {
  user: string;
  org: string;
  /** The socket/session id the change arrived on ("" for system actions). */
  session: string;
}

/** Kinds of entries in a conversation's log. */
export type EntryKind = "update" | "snapshot";

/** One change to append to a conversation's log. */
export interface AppendRequest {
  conversation: string;
  kind: "update";
  actor: Actor;
  /** The Yjs update bytes, already validated. */
  payload: Uint8Array;
  /**
   * Yjs client ids the update uses whose owner the validating node does not know: the actor
   * claims them. The store refuses the append (`refused`) when another actor owns one already.
   */
  claims?: readonly number[];
}

/** What the store reports back for each committed append, in request order. */
export interface CommittedAppend {
  conversation: string;
  /** 0 when refused. */
  seq: number;
  /** Set when the append was not written: a client id it claims belongs to another actor. */
  refused?: "client_id_taken";
  /** Commit time, milliseconds since the epoch (UTC), never earlier than the previous entry's. */
  at: number;
}

/** An audit entry as stored: the attribution and the hash-chain link of one log entry. */
export interface AuditEntry {
  conversation: string;
  seq: number;
  at: number;
  user: string;
  org: string;
  session: string;
  kind: EntryKind;
  /** Payload size in bytes. */
  size: number;
  /** HMAC-SHA256 of the payload under the audit key (never a plain hash). */
  contentHmac: Uint8Array;
  prevHash: Uint8Array;
  hash: Uint8Array;
}

/** An audit entry with its payload (update bytes, or the snapshot state for snapshot entries). */
export interface LogEntry extends AuditEntry {
  payload: Uint8Array | null;
}

/** Where a conversation's chain stands: its last seq and that entry's hash. */
export interface ConversationChainHead {
  conversation: string;
  seq: number;
  hash: Uint8Array;
}

/** The recorded first writer of one Yjs client id in a conversation. */
export interface ClientIdRecord {
  client: number;
  user: string;
  org: string;
  /** Session of the append that first used it (restores: `restore:…`). */
  session: string;
}

/** What a reader needs to rebuild a conversation: latest snapshot plus the updates after it. */
export interface DocumentState {
  /** Merged state of every update with seq <= snapshotCovers, or null when never compacted. */
  snapshot: Uint8Array | null;
  snapshotCovers: number;
  /** Update payloads with seq > snapshotCovers, in sequence order. */
  updates: Uint8Array[];
  /** Number of updates in `updates` (so callers can decide to compact). */
  updatesSinceSnapshot: number;
  /** Last sequence number in the conversation's log (0 when empty). */
  headSeq: number;
}

/** Result of a compaction. */
export interface CompactionResult {
  /** Sequence number of the snapshot's own log entry. */
  seq: number;
  /** The snapshot covers every update with seq <= covers. */
  covers: number;
  size: number;
}

/** The persistence contract shared by every backend. */
export interface Store {
  /**
   * Appends every request in ONE durable transaction (group commit): assigns each the
   * conversation's next sequence number, writes its audit entry with the hash-chain link, and
   * resolves only once the transaction is durable. Rejects as a whole if anything fails; an
   * append whose claims another actor owns is left out alone, reported `refused`.
   */
  appendBatch(requests: readonly AppendRequest[]): Promise<CommittedAppend[]>;
  /** Latest snapshot plus later updates of a conversation (empty state when unknown). */
  loadDocument(conversation: string): Promise<DocumentState>;
  /** Update payloads with seq > afterSeq, in order (for catching up). */
  readUpdatesSince(conversation: string, afterSeq: number): Promise<{ seq: number; payload: Uint8Array }[]>;
  /** Log entries with payloads, seq > afterSeq, at most `limit`, in order (for audit and verify). */
  readEntries(conversation: string, afterSeq: number, limit: number): Promise<LogEntry[]>;
  /**
   * Folds the latest snapshot and the updates after it into a new snapshot, recorded as a
   * `snapshot` log entry (actor: system) in the same transaction. Audit entries and update
   * payloads are kept (history). Returns null when there is nothing to fold.
   */
  compact(conversation: string): Promise<CompactionResult | null>;
  /**
   * Destroys a conversation for good: its data key first (crypto-shredding, so copies of the
   * data, backups included, cannot be decrypted), then its entries, snapshots and head. Keeps
   * only a tombstone of the id: later appends to it are refused with `invalid_request`.
   * Idempotent; resolves true when there was anything to destroy.
   */
  destroyConversation(conversation: string): Promise<boolean>;
  /**
   * The head (seq and hash) of every conversation whose last entry is at or after `sinceMs`, by
   * id: what an audit checkpoint signs. Reads the `conversations` table's head columns only.
   */
  listChainHeads(sinceMs: number): Promise<ConversationChainHead[]>;
  /**
   * When each of `conversations` last had an entry (its head's commit time), read from the heads
   * alone: the retention sweep's one lookup per page. Conversations with no entry are absent.
   */
  lastActivity(conversations: readonly string[]): Promise<Map<string, number>>;
  /** Every client-id owner recorded for a conversation (claims of committed appends). */
  listClientIds(conversation: string): Promise<ClientIdRecord[]>;
  /** True when the store can commit right now (for /readyz). */
  ping(): Promise<boolean>;
  /** The worker threads it runs on (SQLite: one; Postgres: none), for /healthz. */
  readonly workers: readonly WorkerThread[];
  /** Flushes and closes; later calls reject. */
  close(): Promise<void>;
}
