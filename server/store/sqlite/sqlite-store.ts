// The embedded Store: SQLite behind a worker thread, so the event loop never waits on disk.
// This side only forwards calls through the shared worker-thread RPC (../../sql/worker-service.ts);
// the database work is in sqlite-log.ts, served by worker.ts. If the worker dies, every call fails
// fast, never hangs.

import type { MasterKeyring } from "../../crypto/master-key.ts";
import type {
  AppendRequest, ClientIdRecord,
  CommittedAppend,
  CompactionResult,ConversationChainHead, 
  DocumentState,
  LogEntry,
  Store
} from "../store.ts";
import { StoreError, toStoreErrorCode } from "../../sql/store-error.ts";
import { type CallFailure, WorkerService, type WorkerThread } from "../../sql/worker-service.ts";
import { moduleBeside } from "../../sql/module-url.ts";
import type { SqliteLogOptions } from "./sqlite-log.ts";
import type { StoreWorker } from "./worker.ts";
import { packAppendBatch, unpackCommitted } from "./packed-batch.ts";
import { type Clock, systemClock } from "../../platform/clock.ts";

export interface SqliteStoreOptions {
  /** Database file; created (with its WAL files beside it) when missing. */
  path: string;
  /** Key for the content HMACs in the audit chain; at least 16 bytes (32 recommended). */
  auditKey: Uint8Array;
  /** Master keys wrapping each conversation's data key (server/crypto/master-key.ts). */
  masterKeys: MasterKeyring;
  /** File holding the wrapped data keys, apart from the data (../keyring.ts). Default: keyring.db beside `path`. */
  keyringPath?: string;
  /** 'full' (default): every commit survives power loss. 'normal': faster, may lose the last commits on power loss (never on a process crash). */
  synchronous?: "full" | "normal";
  /** How long a write waits for another process holding the database lock. Default 5000. */
  busyTimeoutMs?: number;
  /** ping() answers false when the worker has not replied within this time. Default 5000. */
  pingTimeoutMs?: number;
  /** The clock entries, snapshots, data keys and tombstones are stamped by (the server's; default: the system's). */
  now?: Clock;
}

const WORKER_MODULE = moduleBeside(import.meta.url, "./worker");

/** Every failure, in the worker or of the RPC itself (closed, worker gone, unsendable), as the StoreError it names. */
const toStoreError = (failure: CallFailure): StoreError => new StoreError(toStoreErrorCode(failure.code), failure.message);

/** Starts the worker, opens (creating and migrating if needed) the database, and resolves once it is ready. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  if (!(options.auditKey instanceof Uint8Array) || options.auditKey.byteLength < 16) {
    throw new StoreError("invalid_request", "auditKey must be at least 16 bytes");
  }
  const logOptions: SqliteLogOptions = {
    path: options.path,
    auditKey: options.auditKey,
    masterKeys: options.masterKeys,
    keyringPath: options.keyringPath,
    synchronous: options.synchronous ?? "full",
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
  };
  let service: WorkerService<StoreWorker>;
  try {
    service = await WorkerService.start<StoreWorker>(WORKER_MODULE, logOptions, { name: "store worker", toError: toStoreError });
  } catch (error) {
    throw new StoreError("unavailable", `cannot open store at ${options.path}: ${(error as Error).message}`);
  }
  return new SqliteStore(service, options.pingTimeoutMs ?? 5000, options.now ?? systemClock);
}

/** A Store backed by one SQLite file, served by one worker thread. Create it with {@link openSqliteStore}. */
export class SqliteStore implements Store {
  /** Use {@link openSqliteStore}; this takes a started worker service. */
  constructor(
    private readonly service: WorkerService<StoreWorker>,
    private readonly pingTimeoutMs: number,
    private readonly now: Clock,
  ) {
    this.workers = [service];
  }

  readonly workers: readonly WorkerThread[];

  async appendBatch(requests: readonly AppendRequest[]): Promise<CommittedAppend[]> {
    if (this.service.alive && Array.isArray(requests) && requests.length === 0) return [];
    // One buffer each way, moved between the threads, instead of a clone of every request.
    const batch = packAppendBatch(requests);
    return unpackCommitted(await this.service.call("appendPacked", [batch, this.now()], [batch]), requests);
  }

  loadDocument(conversation: string): Promise<DocumentState> {
    return this.service.call("loadDocument", [conversation]);
  }

  readUpdatesSince(conversation: string, afterSeq: number): Promise<{ seq: number; payload: Uint8Array }[]> {
    return this.service.call("readUpdatesSince", [conversation, afterSeq]);
  }

  readEntries(conversation: string, afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.service.call("readEntries", [conversation, afterSeq, limit]);
  }

  listChainHeads(sinceMs: number): Promise<ConversationChainHead[]> {
    return this.service.call("listChainHeads", [sinceMs]);
  }

  listClientIds(conversation: string): Promise<ClientIdRecord[]> {
    return this.service.call("listClientIds", [conversation]);
  }

  async lastActivity(conversations: readonly string[]): Promise<Map<string, number>> {
    return new Map(await this.service.call("lastActivity", [conversations]));
  }

  compact(conversation: string): Promise<CompactionResult | null> {
    return this.service.call("compact", [conversation, this.now()]);
  }

  destroyConversation(conversation: string): Promise<boolean> {
    return this.service.call("destroyConversation", [conversation, this.now()]);
  }

  async ping(): Promise<boolean> {
    if (!this.service.alive) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.pingTimeoutMs);
    });
    const answered = this.service.call("ping", []).then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lets in-flight calls finish, closes the database (checkpointing the WAL), ends the worker. */
  close(): Promise<void> {
    return this.service.close();
  }

  /** Fault injection: ends the worker thread abruptly, as a crash would. For tests only. */
  killWorkerForTesting(): Promise<void> {
    return this.service.killForTesting();
  }
}
