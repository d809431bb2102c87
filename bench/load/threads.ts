// The generator's worker threads seen from its main thread: started once, handed one plan at a
// time; wait for a given message from all of them, broadcast a command, shut them down.

import { Worker } from "node:worker_threads";
import type { LoadPlan } from "./plan.ts";
import type { ThreadContext } from "./thread-context.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

// Node 20 does not carry `--import tsx` into worker threads, so each worker registers tsx itself
// before importing its TypeScript entry point.
const BOOTSTRAP = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(
  new URL("./worker.ts", import.meta.url).href,
)}); });`;

export class ThreadPool {
  private readonly workers: Worker[];
  private readonly inbox: FromWorker[][];
  private readonly waiters: (() => void)[] = [];
  private failure: Error | undefined;

  constructor(readonly size: number) {
    this.workers = Array.from({ length: size }, () => new Worker(BOOTSTRAP, { eval: true, execArgv: [] }));
    this.inbox = this.workers.map(() => []);
    this.workers.forEach((worker, index) => {
      worker.on("message", (message: FromWorker) => {
        if (message.type === "failed") this.fail(new Error(`worker ${index}: ${message.error}`));
        else this.inbox[index].push(message);
        this.wake();
      });
      worker.on("error", (error) => this.fail(error));
      worker.on("exit", (code) => this.fail(new Error(`worker ${index} exited with ${code}`)));
    });
  }

  /** True once a worker failed: the pool must be replaced. */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** Hands every worker its share of a plan. */
  assign(plan: LoadPlan, shared: Omit<ThreadContext, "index" | "count">): void {
    this.workers.forEach((worker, index) => {
      worker.postMessage({ type: "plan", plan, context: { ...shared, index, count: this.size } } satisfies ToWorker);
    });
  }

  /** Waits until every worker has sent a message of `type`; returns them in worker order. */
  async all<T extends FromWorker["type"]>(type: T): Promise<Extract<FromWorker, { type: T }>[]> {
    for (;;) {
      if (this.failure) throw this.failure;
      const found = this.inbox.map((box) => box.findIndex((m) => m.type === type));
      if (found.every((i) => i >= 0)) {
        return found.map((i, w) => this.inbox[w].splice(i, 1)[0]) as Extract<FromWorker, { type: T }>[];
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  broadcast(message: ToWorker): void {
    for (const worker of this.workers) worker.postMessage(message);
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error("terminated");
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
