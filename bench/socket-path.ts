// CPU, GC and allocation per update of the server's main thread with the whole socket path in
// the way: a real Parley server in this process (its own workers: store, directory, audit,
// partner storage) and y-websocket clients on real sockets in a worker thread of this process,
// in the chatty shape (rooms of clients that all write small Yjs text updates), in rounds: every
// client sends one update, and the next round starts once all of them reached every other member.
// The server's main thread is this process's main thread, so its CPU (/proc/self/task/<pid>,
// 10 ms ticks) and its GC time (PerformanceObserver "gc") are read apart from the clients' and
// the workers', and hold on a busy machine (rounds keep the batching the same however starved the
// server is). Numbers are per update of the measured rounds (after the warm-up rounds).
// Usage: node --import tsx bench/socket-path.ts [--rooms 50] [--clients 10] [--warmup 10]
//   [--rounds 40] [--env KEY=VALUE ...]

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { startServer } from "../server/app.ts";
import { mintToken } from "../server/auth/tokens.ts";
import { systemClock } from "../server/platform/clock.ts";
import { loadConfig } from "../server/platform/config.ts";
import { createLogger } from "../server/platform/logger.ts";
import { ONE_ADDRESS_FOR_ALL_CLIENTS } from "./servers/bench-limits.ts";
import { freePort } from "./servers/free-port.ts";
import { threadCpuSeconds } from "./measure/proc.ts";

const { values } = parseArgs({
  options: {
    rooms: { type: "string", default: "50" },
    clients: { type: "string", default: "10" },
    warmup: { type: "string", default: "10" },
    rounds: { type: "string", default: "40" },
    env: { type: "string", multiple: true, default: [] },
  },
});
const rooms = Number(values.rooms);
const clientsPerRoom = Number(values.clients);
const warmupRounds = Number(values.warmup);
const measuredRounds = Number(values.rounds);
const extraEnv = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));

const mainThreadCpuSeconds = () => threadCpuSeconds().get(String(process.pid))?.seconds ?? 0;

let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration;
    gcCount++;
  }
}).observe({ entryTypes: ["gc"] });

const dataDir = await mkdtemp(join(tmpdir(), "parley-socket-path-"));
const port = await freePort();
const config = loadConfig({ HOST: "127.0.0.1", PORT: String(port), PARLEY_DATA_DIR: dataDir, ...ONE_ADDRESS_FOR_ALL_CLIENTS, ...extraEnv });
const server = await startServer(config, createLogger("silent"));
const conversations = Array.from({ length: rooms }, (_, i) => `cnv_${String(i).padStart(32, "0")}`);
const token = await mintToken(server.keys, server.config.tokens, {
  user: "usr_bench",
  org: "org_bench",
  conversations: Object.fromEntries(conversations.map((c) => [c, "writer" as const])),
  ttlSeconds: 3600,
}, systemClock);

/** Group commits and the updates they carried so far (the server's own counters). */
async function commitCounts(): Promise<{ commits: number; updates: number }> {
  const metrics = await server.metrics.registry.getMetricsAsJSON();
  const total = (name: string) => metrics.find((m) => m.name === name)?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  return { commits: total("parley_commits_total"), updates: total("parley_committed_updates_total") };
}

interface Report {
  type: "ready" | "counts";
  sent: number;
  received: number;
  closed: number;
}
// Node 20 does not carry `--import tsx` into worker threads: the worker registers tsx itself.
const clientsModule = new URL("./socket-path-clients.ts", import.meta.url).href;
const worker = new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(clientsModule)}); })`, {
  eval: true,
  workerData: { port, token, conversations, clientsPerRoom },
});
const reports: ((r: Report) => void)[] = [];
worker.on("message", (r: Report) => reports.shift()?.(r));
worker.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
const next = () => new Promise<Report>((resolve) => reports.push(resolve));
const runRounds = (rounds: number) => {
  const answer = next();
  worker.postMessage({ rounds });
  return answer;
};

await next(); // connected and synced
const before = await runRounds(warmupRounds);
const commitsBefore = await commitCounts();
const threadsBefore = threadCpuSeconds();
const cpuBefore = mainThreadCpuSeconds();
const gcBefore = { ms: gcMs, count: gcCount };
const heapBefore = process.memoryUsage();
const started = performance.now();
const after = await runRounds(measuredRounds);
const wall = (performance.now() - started) / 1000;
const cpu = mainThreadCpuSeconds() - cpuBefore;
const memory = process.memoryUsage();
const commitsAfter = await commitCounts();
const threads = [...threadCpuSeconds()].map(([tid, t]) => `${t.name} ${(((t.seconds - (threadsBefore.get(tid)?.seconds ?? 0)) * 100) / wall).toFixed(0)} %`);
const sent = after.sent - before.sent;
const received = after.received - before.received;
const expected = sent * (clientsPerRoom - 1);
const us = (s: number) => ((s * 1e6) / sent).toFixed(1);
console.log(
  `${rooms} rooms × ${clientsPerRoom} clients, ${measuredRounds} rounds: ${sent} updates in ${wall.toFixed(1)} s (${(sent / wall).toFixed(0)}/s), ` +
    `${received} of ${expected} deliveries (${((100 * received) / Math.max(1, expected)).toFixed(0)} %), ${after.closed} sockets closed`,
);
console.log(
  `  main thread: ${us(cpu)} µs CPU per update (${((100 * cpu) / wall).toFixed(0)} % of a core), ` +
    `GC ${us((gcMs - gcBefore.ms) / 1000)} µs per update in ${gcCount - gcBefore.count} collections; ` +
    `${commitsAfter.commits - commitsBefore.commits} group commits of ${((commitsAfter.updates - commitsBefore.updates) / Math.max(1, commitsAfter.commits - commitsBefore.commits)).toFixed(1)} updates`,
);
console.log(`  threads (% of a core): ${threads.filter((t) => !t.endsWith(" 0 %")).join(", ")}`);
console.log(
  `  memory at the end: RSS ${(memory.rss / 1048576).toFixed(0)} MiB, heap used ${(memory.heapUsed / 1048576).toFixed(0)} MiB ` +
    `(of ${(memory.heapTotal / 1048576).toFixed(0)}), external ${(memory.external / 1048576).toFixed(0)} MiB ` +
    `(array buffers ${(memory.arrayBuffers / 1048576).toFixed(0)}); heap used at the start of the window ${(heapBefore.heapUsed / 1048576).toFixed(0)} MiB`,
);
await worker.terminate();
await server.close();
await rm(dataDir, { recursive: true, force: true });
