// Entry point of one generator worker thread, kept for the whole suite: for each plan it builds
// the thread for the plan's kind, reports when its clients are ready, runs on the main thread's
// signal, reports its counts, and closes its sockets on request.

import { parentPort } from "node:worker_threads";
import { FanoutThread } from "./fanout-thread.ts";
import { IdleThread } from "./idle-thread.ts";
import { JoinThread } from "./join-thread.ts";
import type { LoadPlan } from "./plan.ts";
import type { ThreadContext } from "./thread-context.ts";

/** Main thread → worker. */
export type ToWorker = { type: "plan"; plan: LoadPlan; context: ThreadContext } | { type: "start"; t0: number } | { type: "close" };
/** Worker → main thread. */
export type FromWorker =
  | { type: "ready"; failures: number; errors: string[] }
  | { type: "result"; result: unknown }
  | { type: "closed" }
  | { type: "failed"; error: string };

const port = parentPort!;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
let thread: FanoutThread | IdleThread | JoinThread | undefined;

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case "plan": {
      const { plan, context } = message;
      thread =
        plan.kind === "fanout" ? new FanoutThread(plan, context) : plan.kind === "idle" ? new IdleThread(plan, context) : new JoinThread(plan, context);
      if (thread instanceof IdleThread) {
        post({ type: "ready", ...(await thread.connect(true)) });
      } else {
        post({ type: "ready", failures: thread instanceof FanoutThread ? await thread.connect() : 0, errors: [] });
      }
      return;
    }
    case "start":
      if (thread instanceof FanoutThread) {
        const result = await thread.run(message.t0);
        post({ type: "result", result }, [result.latencies.buffer, result.sendLags.buffer, result.ackLatencies.buffer, result.joinSyncTimes.buffer] as ArrayBuffer[]);
      } else if (thread instanceof JoinThread) {
        const result = await thread.storm();
        post({ type: "result", result }, [result.syncTimes.buffer as ArrayBuffer]);
      } else if (thread instanceof IdleThread) {
        post({ type: "result", result: await thread.connect(false) });
      }
      return;
    case "close":
      await thread?.close();
      thread = undefined;
      post({ type: "closed" });
      return;
  }
}

port.on("message", (message: ToWorker) => {
  handle(message).catch((error: Error) => post({ type: "failed", error: error.stack ?? String(error) }));
});
