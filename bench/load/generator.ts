// The load generator process (forked by the runner, never inside the server's process), kept for
// the whole suite: takes one plan at a time over IPC, spreads its clients over worker threads,
// walks the plan's phases with the runner (so the runner can measure the server between them),
// and sends back the merged result.

import { now } from "./clock.ts";
import type { FanoutThreadResult } from "./fanout-thread.ts";
import { updatesPerWriter } from "./fanout-thread.ts";
import type { IdleThreadResult } from "./idle-thread.ts";
import type { JoinThreadResult } from "./join-thread.ts";
import type { FanoutPlan, FanoutResult, GeneratorMessage, IdlePlan, JoinPlan, LoadPlan, LoadResult, PhaseName, RunnerMessage } from "./plan.ts";
import { summarize } from "./samples.ts";
import { seedDocument } from "./seed.ts";
import { ThreadPool } from "./threads.ts";

const send = (message: GeneratorMessage) => new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()));
let continueWaiter: (() => void) | undefined;

/** Tells the runner we reached `name` and waits until it has measured and says continue. */
function phase(name: PhaseName): Promise<void> {
  return new Promise((resolve) => {
    continueWaiter = resolve;
    void send({ type: "phase", name });
  });
}

async function runFanout(plan: FanoutPlan, pool: ThreadPool): Promise<FanoutResult> {
  const ready = await pool.all("ready");
  await phase("connected");
  const t0 = now() + 100;
  pool.broadcast({ type: "start", t0 });
  const marked = new Set<string>();
  const mark = (name: "measure-start" | "measure-end") => {
    if (marked.has(name)) return;
    marked.add(name);
    void send({ type: "mark", name });
  };
  const marks = [
    setTimeout(() => mark("measure-start"), t0 + plan.warmupMs - now()),
    setTimeout(() => mark("measure-end"), t0 + plan.warmupMs + plan.measureMs - now()),
  ];
  const parts = (await pool.all("result")).map((m) => m.result as FanoutThreadResult);
  marks.forEach(clearTimeout);
  // Threads may finish early once everything arrived; the runner still needs both marks.
  mark("measure-start");
  mark("measure-end");
  const sum = (key: keyof FanoutThreadResult) => parts.reduce((n, p) => n + (p[key] as number), 0);
  const seconds = plan.measureMs / 1000;
  return {
    kind: "fanout",
    offeredUpdatesPerSec: sum("sentMeasured") / seconds,
    deliveriesPerSec: sum("receivedMeasured") / seconds,
    expectedDeliveries: sum("expected"),
    receivedDeliveries: sum("received"),
    loss: sum("expected") - sum("received"),
    duplicates: sum("duplicates"),
    unknown: sum("unknown"),
    latency: summarize(parts.map((p) => p.latencies)),
    sendLag: summarize(parts.map((p) => p.sendLags)),
    ack: plan.acks ? summarize(parts.map((p) => p.ackLatencies)) : null,
    connectFailures: ready.reduce((n, r) => n + r.failures, 0),
    closedDuringRun: sum("closedDuringRun"),
    errors: parts.flatMap((p) => p.errors).slice(0, 10),
    joins:
      (plan.joinersPerRoom ?? 0) > 0
        ? {
            attempted: sum("joinAttempted"),
            failed: sum("joinFailed"),
            synced: sum("joinAttempted") - sum("joinFailed"),
            allSyncedMs: Math.max(...parts.map((p) => p.joinLastSyncedMs)),
            syncTime: summarize(parts.map((p) => p.joinSyncTimes)),
          }
        : null,
  };
}

async function runIdle(plan: IdlePlan, pool: ThreadPool): Promise<LoadResult> {
  const warm = await pool.all("ready");
  await phase("warm");
  const started = now();
  pool.broadcast({ type: "start", t0: started });
  const rest = (await pool.all("result")).map((m) => m.result as IdleThreadResult);
  const connectMs = now() - started;
  const failures = rest.reduce((n, r) => n + r.failures, 0);
  await phase("connected");
  return {
    kind: "idle",
    connected: plan.rooms * plan.clientsPerRoom - plan.warmClients - failures,
    connectFailures: failures + warm.reduce((n, r) => n + r.failures, 0),
    connectMs,
    errors: [...warm, ...rest].flatMap((r) => r.errors).slice(0, 10),
  };
}

async function runJoin(plan: JoinPlan, pool: ThreadPool): Promise<LoadResult> {
  const seeded = await seedDocument(plan);
  const seededBytes = seeded.chars;
  await pool.all("ready");
  await phase("seeded");
  const stormStart = now();
  pool.broadcast({ type: "start", t0: stormStart });
  const parts = (await pool.all("result")).map((m) => m.result as JoinThreadResult);
  await seeded.close();
  const synced = parts.reduce((n, p) => n + p.synced, 0);
  return {
    kind: "join",
    seededBytes,
    synced,
    failed: parts.reduce((n, p) => n + p.failed, 0),
    allSyncedMs: synced > 0 ? Math.max(...parts.map((p) => p.lastSyncedAt)) - stormStart : Number.NaN,
    syncTime: summarize(parts.map((p) => p.syncTimes)),
    minSyncBytes: Math.min(...parts.map((p) => p.minSyncBytes)),
    errors: parts.flatMap((p) => p.errors).slice(0, 10),
  };
}

let pool: ThreadPool | undefined;

async function run(plan: LoadPlan): Promise<void> {
  if (!pool || pool.broken || pool.size !== plan.workers) {
    await pool?.terminate();
    pool = new ThreadPool(plan.workers);
  }
  const writers = plan.kind === "fanout" ? plan.rooms * plan.writersPerRoom * updatesPerWriter(plan) : 0;
  const sendTimes = new Int32Array(new SharedArrayBuffer(Math.max(4, writers * 4)));
  pool.assign(plan, { sendTimes, epoch: now() });
  const result =
    plan.kind === "fanout" ? await runFanout(plan, pool) : plan.kind === "idle" ? await runIdle(plan, pool) : await runJoin(plan, pool);
  pool.broadcast({ type: "close" });
  await Promise.race([pool.all("closed"), new Promise((resolve) => setTimeout(resolve, 5000))]);
  await send({ type: "result", result });
}

process.on("message", (message: RunnerMessage) => {
  if (message.type === "continue") {
    continueWaiter?.();
    return;
  }
  run(message.plan).catch(async (error: Error) => {
    await send({ type: "failed", error: error.stack ?? String(error) });
    // A failed plan may leave sockets open in the workers: start the next one from scratch.
    await pool?.terminate();
    pool = undefined;
  });
});
// The runner went away: nothing left to report to.
process.on("disconnect", () => process.exit(0));
