// Runs a synchronous service (e.g. a better-sqlite3 database) in a worker thread and exposes it
// to the event loop as the same methods returning promises. The service module exports
// `openService(options)` returning an object whose `operations` lists the callable methods.
// Every SQLite worker (log store, directory, audit log, partner storage) runs on this one RPC.

import { Worker } from "node:worker_threads";

/** What a service module's `openService` returns. */
export interface SyncService {
  /** Names of the methods callable from the main thread. */
  readonly operations: readonly string[];
  /** Releases resources; called by {@link WorkerService.close}. */
  close(): void;
}

/** The async view of a synchronous service: same methods, promised results. */
export type Promised<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** The names of T's methods. */
export type MethodName<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T] & string;
type Method<T, K extends keyof T> = Extract<T[K], (...args: never[]) => unknown>;

/** A failed call as it crosses the thread boundary (class identity does not survive cloning). */
export interface CallFailure {
  /** The thrown error's `code` (its own, or one of this RPC's: closed, unavailable, invalid_request, internal). */
  code: string;
  message: string;
  /** The thrown error's class name ("Error" for this RPC's own failures). */
  name: string;
}

/** An error raised inside the worker, re-thrown on the main thread with its code. */
export class WorkerCallError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly originalName: string,
  ) {
    super(message);
    this.name = "WorkerCallError";
  }
}

export interface WorkerServiceOptions {
  /** Names the thread in error messages. Default "service worker". */
  name?: string;
  /**
   * The error a failed call rejects with, built from its failure: lets a service keep its own
   * typed errors across the boundary (the log store rejects with StoreError). Default: WorkerCallError.
   */
  toError?: (failure: CallFailure) => Error;
}

interface Reply {
  type: "reply";
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { name?: unknown; code?: unknown; message?: string };
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

type Status = "open" | "closing" | "closed" | "dead";

/**
 * A worker thread as the process's liveness sees it. A dead worker is never restarted in the
 * process (its database may have been mid-transaction), so one that died makes the process one
 * to restart: /healthz reports it.
 */
export interface WorkerThread {
  /** Names the thread ("store worker", "directory worker"). */
  readonly name: string;
  /** Why the thread died (its error, then its exit code); null while it runs or after a clean close. */
  readonly deathCause: string | null;
  /** Fault injection: ends the thread abruptly, as a crash would. For tests only. */
  killForTesting(): Promise<void>;
}

const ENTRY = new URL("./worker-entry.mjs", import.meta.url);
const DEFAULT_NAME = "service worker";
const asWorkerCallError = (failure: CallFailure): Error => new WorkerCallError(failure.message, failure.code, failure.name);

/** A started worker service; call its methods through {@link WorkerService.api} or {@link WorkerService.call}. */
export class WorkerService<T extends SyncService> implements WorkerThread {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private status: Status = "open";
  /** Why the thread ended (its uncaught error, then its exit code). */
  private failure = "";
  private closing: Promise<void> | null = null;
  private drainWaiters: (() => void)[] = [];
  readonly name: string;
  private readonly toError: (failure: CallFailure) => Error;
  /** The service's methods, each returning a promise. */
  readonly api: Promised<T>;

  private constructor(
    private readonly worker: Worker,
    options: WorkerServiceOptions,
  ) {
    this.name = options.name ?? DEFAULT_NAME;
    this.toError = options.toError ?? asWorkerCallError;
    worker.on("message", (reply: Reply) => this.onReply(reply));
    worker.on("error", (error: Error) => {
      this.failure ||= error.message;
    });
    worker.on("exit", (code: number) => this.onExit(code));
    // Keep the process alive only while calls are in flight (see call/settle), so a forgotten
    // close() does not hang a script; close() is still what flushes and releases the service.
    worker.unref();
    this.api = new Proxy({} as Promised<T>, {
      get: (_target, op) => (typeof op === "string" ? (...args: unknown[]) => this.send(op, args) : undefined),
    });
  }

  /**
   * Starts a worker running `moduleUrl`'s `openService(options)`; resolves once it is ready.
   * A service that fails to open rejects with a WorkerCallError (code "unavailable") saying why.
   */
  static async start<T extends SyncService>(moduleUrl: URL, options: unknown, serviceOptions: WorkerServiceOptions = {}): Promise<WorkerService<T>> {
    const name = serviceOptions.name ?? DEFAULT_NAME;
    const worker = new Worker(ENTRY, { workerData: { moduleUrl: moduleUrl.href, options } });
    // A service that fails to open reports it ("failed"), then its thread dies of the same error:
    // that second report must not surface as an uncaught 'error' event.
    let failure = "";
    const onError = (error: Error) => {
      failure ||= error.message;
    };
    worker.on("error", onError);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { type: string; message?: string }) => {
        if (message.type === "ready") done(resolve);
        else if (message.type === "failed") done(() => reject(new WorkerCallError(message.message ?? "failed to open", "unavailable", "Error")));
      };
      const onExit = (code: number) =>
        done(() => reject(new WorkerCallError(`${name} exited (code ${code}${failure ? `: ${failure}` : ""}) while starting`, "unavailable", "Error")));
      const done = (then: () => void) => {
        worker.off("message", onMessage);
        worker.off("exit", onExit);
        then();
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
    });
    worker.off("error", onError);
    return new WorkerService<T>(worker, serviceOptions);
  }

  /** True while the worker is alive and not closed. */
  get alive(): boolean {
    return this.status === "open";
  }

  /** Why the thread died; null while it runs, and after a close (a clean end is no death). */
  get deathCause(): string | null {
    return this.status === "dead" ? this.failure || `${this.name} exited` : null;
  }

  /** Calls sent and not yet answered. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  /**
   * Calls `op`, moving the ArrayBuffers in `transfer` to the worker instead of copying them (the
   * caller's become detached). A result that is an ArrayBuffer comes back moved too.
   */
  call<K extends MethodName<T>>(op: K, args: Parameters<Method<T, K>>, transfer: readonly ArrayBuffer[] = []): Promise<Awaited<ReturnType<Method<T, K>>>> {
    return this.send(op, args, transfer) as Promise<Awaited<ReturnType<Method<T, K>>>>;
  }

  /** Lets the calls in flight finish, then closes the service and ends the thread; later calls fail as "closed". */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Fault injection: ends the worker thread abruptly, as a crash would. For tests only. */
  async killForTesting(): Promise<void> {
    await this.worker.terminate();
  }

  private async shutdown(): Promise<void> {
    if (this.status === "open") {
      this.status = "closing";
      await this.drained();
      try {
        await this.post("close", []);
      } catch {
        // The worker died meanwhile: nothing left to flush, and callers were already told.
      }
    }
    this.status = "closed";
    await this.worker.terminate();
  }

  private send(op: string, args: unknown[], transfer: readonly ArrayBuffer[] = []): Promise<unknown> {
    if (this.status !== "open") return Promise.reject(this.unusableError());
    return this.post(op, args, transfer);
  }

  private post(op: string, args: unknown[], transfer: readonly ArrayBuffer[] = []): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.worker.postMessage({ id, op, args }, transfer);
      } catch (error) {
        // Arguments that cannot be cloned never reach the worker: nothing may wait for a reply
        // (a pending call also keeps the process alive).
        reject(this.rpcError("invalid_request", `cannot send ${op} to the ${this.name}: ${(error as Error).message}`));
        return;
      }
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
    });
  }

  private onReply(reply: Reply): void {
    if (reply.type !== "reply") return;
    const call = this.settle(reply.id);
    if (!call) return;
    if (reply.ok) call.resolve(reply.value);
    else {
      const { message, code, name } = reply.error ?? {};
      call.reject(this.toError({ message: message ?? "failed", code: typeof code === "string" ? code : "internal", name: typeof name === "string" ? name : "Error" }));
    }
  }

  private onExit(code: number): void {
    if (this.status === "open" || this.status === "closing") {
      this.status = this.status === "closing" ? "closed" : "dead";
      this.failure = `${this.name} exited (code ${code}${this.failure ? `: ${this.failure}` : ""})`;
    }
    const message = `${this.failure || `${this.name} exited`}; the outcome of in-flight calls is unknown`;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(this.rpcError("unavailable", message));
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

  private unusableError(): Error {
    return this.status === "dead"
      ? this.rpcError("unavailable", this.failure || `${this.name} exited`)
      : this.rpcError("closed", `the ${this.name} is closed`);
  }

  private rpcError(code: string, message: string): Error {
    return this.toError({ code, message, name: "Error" });
  }
}
