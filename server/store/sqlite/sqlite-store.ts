// The embedded Store: SQLite behind a worker thread, so the event loop never waits on disk.
// This side only forwards calls as messages and settles them from replies; the database work is
// in sqlite-log.ts, run by worker.ts. If the worker dies, every call fails fast, never hangs.

import { Worker } from "node:worker_threads";
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
import type { OpName, OpRequest, SqliteOps, SqliteWorkerData, WorkerMessage } from "./worker-protocol.ts";
import { moduleBeside } from "../../sql/module-url.ts";
import { packAppendBatch, unpackCommitted } from "./packed-batch.ts";

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
}

// The entry is a small JavaScript bootstrap that makes the thread able to load worker.ts from
// source (compiled, it loads worker.js directly).
const WORKER_BOOTSTRAP = new URL("./worker-bootstrap.mjs", import.meta.url);
const WORKER_MODULE = moduleBeside(import.meta.url, "./worker").href;

/** Starts the worker, opens (creating and migrating if needed) the database, and resolves once it is ready. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  if (!(options.auditKey instanceof Uint8Array) || options.auditKey.byteLength < 16) {
    throw new StoreError("invalid_request", "auditKey must be at least 16 bytes");
  }
  const workerData: SqliteWorkerData = {
    moduleUrl: WORKER_MODULE,
    path: options.path,
    auditKey: options.auditKey,
    masterKeys: options.masterKeys,
    keyringPath: options.keyringPath,
    synchronous: options.synchronous ?? "full",
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
  };
  const worker = new Worker(WORKER_BOOTSTRAP, { workerData });
  await waitUntilReady(worker, options.path);
  return new SqliteStore(worker, options.pingTimeoutMs ?? 5000);
}

function waitUntilReady(worker: Worker, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure = "";
    const onMessage = (m: WorkerMessage) => {
      if (m.type !== "ready") return;
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      failure = err.message;
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new StoreError("unavailable", `cannot open store at ${path}: ${failure || `worker exited with code ${code}`}`));
    };
    const cleanup = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
  });
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(err: StoreError): void;
}

type Status = "open" | "closing" | "closed" | "dead";

/** A Store backed by one SQLite file, served by one worker thread. Create it with {@link openSqliteStore}. */
export class SqliteStore implements Store {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private status: Status = "open";
  private failure = "";
  private closing: Promise<void> | null = null;
  private drainWaiters: (() => void)[] = [];

  /** Use {@link openSqliteStore}; this takes a worker that already reported ready. */
  constructor(
    private readonly worker: Worker,
    private readonly pingTimeoutMs: number,
  ) {
    worker.on("message", (m: WorkerMessage) => this.onMessage(m));
    worker.on("error", (err: Error) => {
      this.failure ||= err.message;
    });
    worker.on("exit", (code: number) => this.onExit(code));
    // Keep the process alive only while calls are in flight (see send/settle), so a forgotten
    // close() does not hang a script; close() is still what flushes and releases the file.
    worker.unref();
  }

  async appendBatch(requests: readonly AppendRequest[]): Promise<CommittedAppend[]> {
    if (this.status === "open" && Array.isArray(requests) && requests.length === 0) return [];
    // One buffer each way, moved between the threads, instead of a clone of every request.
    const batch = packAppendBatch(requests);
    return unpackCommitted(await this.call("appendPacked", [batch], [batch]), requests);
  }

  loadDocument(conversation: string): Promise<DocumentState> {
    return this.call("loadDocument", [conversation]);
  }

  readUpdatesSince(conversation: string, afterSeq: number): Promise<{ seq: number; payload: Uint8Array }[]> {
    return this.call("readUpdatesSince", [conversation, afterSeq]);
  }

  readEntries(conversation: string, afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.call("readEntries", [conversation, afterSeq, limit]);
  }

  listChainHeads(sinceMs: number): Promise<ConversationChainHead[]> {
    return this.call("listChainHeads", [sinceMs]);
  }

  listClientIds(conversation: string): Promise<ClientIdRecord[]> {
    return this.call("listClientIds", [conversation]);
  }

  async lastActivity(conversations: readonly string[]): Promise<Map<string, number>> {
    return new Map(await this.call("lastActivity", [conversations]));
  }

  compact(conversation: string): Promise<CompactionResult | null> {
    return this.call("compact", [conversation]);
  }

  destroyConversation(conversation: string): Promise<boolean> {
    return this.call("destroyConversation", [conversation]);
  }

  async ping(): Promise<boolean> {
    if (this.status !== "open") return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.pingTimeoutMs);
    });
    const answered = this.call("ping", []).then(
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
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Fault injection: ends the worker thread abruptly, as a crash would. For tests only. */
  async killWorkerForTesting(): Promise<void> {
    await this.worker.terminate();
  }

  private async shutdown(): Promise<void> {
    if (this.status === "open") {
      this.status = "closing";
      await this.drained();
      try {
        await this.send("close", []);
      } catch {
        // The worker died meanwhile: nothing left to flush, and callers were already told.
      }
    }
    this.status = "closed";
    await this.worker.terminate();
  }

  private call<K extends OpName>(
    op: K,
    args: Parameters<SqliteOps[K]>,
    transfer: ArrayBuffer[] = [],
  ): Promise<ReturnType<SqliteOps[K]>> {
    if (this.status !== "open") return Promise.reject(this.unusableError());
    return this.send(op, args, transfer);
  }

  private send<K extends OpName>(
    op: K,
    args: Parameters<SqliteOps[K]>,
    transfer: ArrayBuffer[] = [],
  ): Promise<ReturnType<SqliteOps[K]>> {
    const id = this.nextId++;
    const request: OpRequest<K> = { id, op, args };
    return new Promise<ReturnType<SqliteOps[K]>>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      try {
        this.worker.postMessage(request, transfer);
      } catch (err) {
        this.settle(id);
        reject(new StoreError("invalid_request", `cannot send ${op} to the store worker: ${(err as Error).message}`));
      }
    });
  }

  private onMessage(m: WorkerMessage): void {
    if (m.type !== "reply") return;
    const call = this.settle(m.id);
    if (!call) return;
    if (m.ok) call.resolve(m.value);
    else call.reject(new StoreError(toStoreErrorCode(m.error.code), m.error.message));
  }

  private onExit(code: number): void {
    if (this.status === "open" || this.status === "closing") {
      this.status = this.status === "closing" ? "closed" : "dead";
      this.failure = `store worker exited (code ${code}${this.failure ? `: ${this.failure}` : ""})`;
    }
    const err = new StoreError("unavailable", `${this.failure || "store worker exited"}; the outcome of in-flight calls is unknown`);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }

  private settle(id: number): PendingCall | undefined {
    const call = this.pending.get(id);
    if (!call) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) {
      this.worker.unref();
      for (const wake of this.drainWaiters.splice(0)) wake();
    }
    return call;
  }

  private drained(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private unusableError(): StoreError {
    return this.status === "dead"
      ? new StoreError("unavailable", this.failure || "store worker exited")
      : new StoreError("closed", "the store is closed");
  }
}
