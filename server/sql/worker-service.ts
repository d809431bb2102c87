// Runs a synchronous service (e.g. a better-sqlite3 database) in a worker thread and exposes it
// to the event loop as the same methods returning promises. The service module exports
// `openService(options)` returning an object whose `operations` lists the callable methods.

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

interface Reply {
  type: "reply";
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { name?: string; code?: string; message: string };
}

const ENTRY = new URL("./worker-entry.mjs", import.meta.url);

/** A started worker service; call its methods through {@link WorkerService.api}. */
export class WorkerService<T extends SyncService> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  private closing: Promise<void> | null = null;
  /** The service's methods, each returning a promise. */
  readonly api: Promised<T>;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: Reply) => this.settle(reply));
    worker.on("exit", (code) => this.fail(new WorkerCallError(`service worker exited (${code})`, "unavailable", "Error")));
    worker.on("error", (error) => this.fail(new WorkerCallError(error.message, "unavailable", "Error")));
    worker.unref();
    this.api = new Proxy({} as Promised<T>, {
      get: (_target, op) => (typeof op === "string" ? (...args: unknown[]) => this.call(op, args) : undefined),
    });
  }

  /** Starts a worker running `moduleUrl`'s `openService(options)`; resolves once it is ready. */
  static async start<T extends SyncService>(moduleUrl: URL, options: unknown): Promise<WorkerService<T>> {
    const worker = new Worker(ENTRY, { workerData: { moduleUrl: moduleUrl.href, options } });
    // A service that fails to open reports it ("failed"), then its thread dies of the same error:
    // that second report must not surface as an uncaught 'error' event.
    const ignoreError = () => {};
    worker.on("error", ignoreError);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { type: string; message?: string }) => {
        if (message.type === "ready") done(resolve);
        else if (message.type === "failed") done(() => reject(new Error(message.message)));
      };
      const onExit = (code: number) => done(() => reject(new Error(`service worker exited (${code}) while starting`)));
      const done = (then: () => void) => {
        worker.off("message", onMessage);
        worker.off("exit", onExit);
        then();
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
    });
    worker.off("error", ignoreError);
    return new WorkerService<T>(worker);
  }

  /** True while the worker is alive and not closed. */
  get alive(): boolean {
    return this.dead === null && this.closing === null;
  }

  /** Calls sent and not yet answered. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  /** Waits for calls in flight, closes the service, ends the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.dead) await this.call("close", [], true).catch(() => undefined);
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private call(op: string, args: unknown[], closing = false): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing && !closing) return Promise.reject(new WorkerCallError("service is closed", "closed", "Error"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.worker.postMessage({ id, op, args });
      } catch (error) {
        // Arguments that cannot be cloned never reach the worker: nothing may wait for a reply
        // (a pending call also keeps the process alive).
        reject(new WorkerCallError(`cannot send ${op} to the service worker: ${(error as Error).message}`, "invalid_request", "Error"));
        return;
      }
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
    });
  }

  private settle(reply: Reply): void {
    if (reply.type !== "reply") return;
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) call.resolve(reply.value);
    else call.reject(new WorkerCallError(reply.error?.message ?? "failed", reply.error?.code ?? "internal", reply.error?.name ?? "Error"));
  }

  private fail(error: Error): void {
    this.dead ??= error;
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}
