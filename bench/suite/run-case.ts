// Runs one scenario against one server: a server process from the pool, a plan for the forked
// load generator, and the server's CPU and RSS sampled from /proc over the measured window.
// Never throws: a failure becomes a "failed" row with the reason.

import type { ServerName } from "../clients/index.ts";
import type { ClientAuth } from "../clients/protocol-client.ts";
import { type FanoutPlan, type IdlePlan, type JoinPlan, planRooms } from "../load/plan.ts";
import { rssBytes } from "../measure/proc.ts";
import { ProcessSampler, type ProcessUsage } from "../measure/sampler.ts";
import {
  clusterServices,
  counterDelta,
  openParleyCluster,
  type ParleyCluster,
  type ServiceCounters,
  servicesUnavailable,
} from "../servers/parley-cluster.ts";
import { clientAuth, type ServerUnderTest, unavailable } from "../servers/registry.ts";
import { runLoad } from "./load-process.ts";
import type { CaseResult, ServicesPerUpdate } from "./result.ts";
import { describeFanout, describeLoad, type FanoutScenario, type SuiteConfig, type Timing } from "./scenarios.ts";
import type { ServerPool } from "./server-pool.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MIN_SERVER_AGE_MS = 9000;

/** What every case needs besides its own parameters. */
export interface CaseContext {
  config: SuiteConfig;
  pool: ServerPool;
}

/**
 * The server's resident memory once it has settled: a full GC (SIGUSR2, see servers/guard.mjs),
 * then RSS readings until five in a row agree within 1 MiB (V8 returns freed pages lazily).
 */
async function settledRss(pid: number, timeoutMs = 5000): Promise<number> {
  process.kill(pid, "SIGUSR2");
  const readings: number[] = [];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await sleep(200);
    readings.push(rssBytes(pid));
    const last = readings.slice(-5);
    if (last.length === 5 && (Math.max(...last) - Math.min(...last) < 1024 * 1024 || performance.now() > deadline)) {
      return last.reduce((a, b) => a + b, 0) / last.length;
    }
  }
}

/** A row is clean when the server can be trusted for the next case. */
function clean(row: CaseResult): boolean {
  const f = row.fanout;
  return row.status === "ok" && (!f || (f.loss === 0 && f.closedDuringRun === 0 && f.connectFailures === 0));
}

/** Turns a row into a failure with the error's first line, and shows the servers' last log lines. */
function markFailed(row: CaseResult, error: unknown, servers: ServerUnderTest[]): void {
  row.status = "failed";
  row.note = `failed: ${(error as Error).message.split("\n")[0].slice(0, 300)}`;
  for (const server of servers) process.stderr.write(`[bench] ${server.name} (pid ${server.pid}) stderr tail:\n${server.stderrTail()}\n`);
}

async function withServer(
  base: Omit<CaseResult, "status" | "note" | "durationMs">,
  rooms: string[],
  context: CaseContext,
  body: (server: ServerUnderTest, auth: ClientAuth, row: CaseResult) => Promise<void>,
): Promise<CaseResult> {
  const started = performance.now();
  const row: CaseResult = { ...base, status: "ok", note: "", durationMs: 0 };
  const why = unavailable(base.server);
  if (why) return { ...row, status: "skipped", note: `skipped: ${why}` };
  let server: ServerUnderTest | undefined;
  try {
    const [auth, acquired] = await Promise.all([clientAuth(base.server, rooms), context.pool.acquire(base.server)]);
    server = acquired;
    await body(server, auth, row);
  } catch (error) {
    markFailed(row, error, server ? [server] : []);
  } finally {
    // BENCH_SERVER_LOG=1: the server's last log lines after every case (to see what it refused).
    if (server && process.env.BENCH_SERVER_LOG) process.stderr.write(`[bench] ${server.name} log tail:\n${server.stderrTail()}\n`);
    if (server) await context.pool.release(server, clean(row));
    row.durationMs = performance.now() - started;
  }
  return row;
}

function otherCpu(machine: number, row: CaseResult): number {
  return Math.max(0, machine - (row.server_usage?.cpuPercent ?? 0) - (row.generator_usage?.cpuPercent ?? 0));
}

export function runFanoutCase(
  scenario: CaseResult["scenario"],
  server: ServerName,
  shape: FanoutScenario,
  timing: Timing,
  context: CaseContext,
  /** Rooms of their own (a retry must not resend the same updates into the same rooms: a server may rightly drop them as already applied). */
  roomPrefix = scenario.replace(":", ""),
): Promise<CaseResult> {
  const load = describeFanout(shape);
  const plan: Omit<FanoutPlan, "port" | "auth"> = {
    ...shape,
    kind: "fanout",
    server,
    roomPrefix,
    workers: context.config.generatorThreads,
    ...timing,
    // Parley is measured through its y-websocket route, which has no acks.
    acks: false,
  };
  return withServer({ scenario, server, load }, planRooms(plan), context, (srv, auth, row) =>
    measureFanout({ ...plan, port: srv.port, auth }, [srv.pid], context, row),
  );
}

/** Runs a fan-out plan against running server processes and fills the row in (usage summed over them). */
async function measureFanout(
  plan: FanoutPlan,
  pids: number[],
  context: CaseContext,
  row: CaseResult,
  onMark?: (name: "measure-start" | "measure-end") => void,
): Promise<void> {
  const samplers = pids.map((pid) => new ProcessSampler(pid));
  let usage: ProcessUsage[] = [];
  const outcome = await runLoad(
    plan,
    {
      mark: (name) => {
        if (name === "measure-start") for (const sampler of samplers) sampler.start();
        else usage = samplers.map((sampler) => sampler.stop());
        onMark?.(name);
      },
    },
    60_000 + plan.warmupMs + plan.measureMs + plan.drainMs,
    context.config.niceness,
  );
  if (outcome.result.kind !== "fanout") throw new Error("unexpected result kind");
  row.fanout = outcome.result;
  row.server_usage =
    usage.length === 1
      ? usage[0]
      : {
          cpuPercent: usage.reduce((sum, u) => sum + u.cpuPercent, 0),
          rssPeakBytes: usage.reduce((sum, u) => sum + u.rssPeakBytes, 0),
          rssEndBytes: usage.reduce((sum, u) => sum + u.rssEndBytes, 0),
        };
  if (pids.length > 1) row.node_usage = usage;
  row.generator_usage = outcome.generator;
  row.other_cpu_percent = otherCpu(outcome.machineCpuPercent, row);
  row.note = fanoutNote(row);
}

/**
 * The cluster scenario: the same load on one node, then (fresh rooms) on two nodes of the same
 * cluster, Postgres + Redis, every room's clients and writers split between the nodes (see
 * FanoutPlan.ports). Both rows are "skipped" when the services are not reachable.
 */
export async function runClusterCases(context: CaseContext): Promise<CaseResult[]> {
  const shape = context.config.cluster;
  const rows = [1, 2].map(
    (nodes): CaseResult => ({
      scenario: "cluster",
      server: "parley",
      nodes,
      load: `${describeFanout(shape)}; ${nodes === 1 ? "one node" : `${nodes} nodes`}, Postgres + Redis`,
      status: "ok",
      note: "",
      durationMs: 0,
    }),
  );
  const services = clusterServices();
  const why = await servicesUnavailable(services);
  if (why) return rows.map((row) => ({ ...row, status: "skipped", note: `skipped: ${why}` }));
  let cluster: ParleyCluster | undefined;
  try {
    cluster = await openParleyCluster(services, context.config.niceness);
    for (const row of rows) {
      const started = performance.now();
      const plan: Omit<FanoutPlan, "port" | "auth"> = {
        ...shape,
        kind: "fanout",
        server: "parley",
        roomPrefix: `cluster${row.nodes}`,
        workers: context.config.generatorThreads,
        ...context.config.timing,
        acks: false,
      };
      try {
        const auth = await clientAuth("parley", planRooms(plan));
        while (cluster.nodes.length < row.nodes!) await cluster.addNode();
        const ports = cluster.nodes.map((node) => node.port);
        // The services' counters over an idle window as long as the measured one (others using
        // the same Redis and Postgres), then over the measured window.
        const open = cluster;
        const idleBefore = await open.counters();
        await sleep(plan.measureMs);
        const idle = counterDelta(await open.counters(), idleBefore);
        let before: Promise<ServiceCounters> | undefined;
        let after: Promise<ServiceCounters> | undefined;
        await measureFanout({ ...plan, port: ports[0], ports, auth }, cluster.nodes.map((node) => node.pid), context, row, (name) => {
          if (name === "measure-start") before = open.counters();
          else after = open.counters();
        });
        if (before && after && row.fanout) row.services = servicesPerUpdate(counterDelta(await after, await before), idle);
      } catch (error) {
        markFailed(row, error, cluster.nodes);
      }
      row.durationMs = performance.now() - started;
    }
  } catch (error) {
    for (const row of rows) if (row.status === "ok" && !row.fanout) markFailed(row, error, []);
  } finally {
    await cluster?.stop();
  }
  return rows;
}

/** The measured window's service operations, less the idle baseline, per committed update. */
function servicesPerUpdate(window: ServiceCounters, idle: ServiceCounters): ServicesPerUpdate {
  const updates = window.parleyUpdates;
  const per = (value: number) => (updates > 0 ? Math.max(0, value) / updates : Number.NaN);
  const redisByCommand: Record<string, number> = {};
  let redis = 0;
  for (const [command, calls] of Object.entries(window.redis)) {
    const net = calls - (idle.redis[command] ?? 0);
    if (net <= 0 || command === "info") continue;
    redisByCommand[command] = per(net);
    redis += net;
  }
  return {
    redisByCommand,
    redisPerUpdate: per(redis),
    pgCommitsPerUpdate: per(window.pgCommits - idle.pgCommits),
    pgRowsWrittenPerUpdate: per(window.pgRowsInserted + window.pgRowsUpdated),
    pgIndexScansPerUpdate: per(window.pgIndexScans),
    commitsPerUpdate: per(window.parleyCommits),
    updates,
  };
}

/** True when the generator fell behind because server and generator used up both cores. */
export function generatorBound(row: CaseResult): boolean {
  const together = (row.server_usage?.cpuPercent ?? 0) + (row.generator_usage?.cpuPercent ?? 0);
  return (row.fanout?.sendLag.p99 ?? 0) > 5 && together > 170;
}

function fanoutNote(row: CaseResult): string {
  const r = row.fanout!;
  const notes: string[] = [];
  if (r.joins) {
    const j = r.joins;
    notes.push(
      j.failed > 0
        ? `**${j.failed} of ${j.attempted} joiners did not sync**`
        : `**all ${j.attempted} joiners synced in ${(j.allSyncedMs / 1000).toFixed(2)} s** (per client p50 ${j.syncTime.p50.toFixed(0)} ms, p99 ${j.syncTime.p99.toFixed(0)} ms)`,
    );
  }
  if (r.connectFailures > 0) notes.push(`${r.connectFailures} clients failed to connect`);
  if (r.closedDuringRun > 0) notes.push(`${r.closedDuringRun} sockets closed by server`);
  if (r.unknown > 0) notes.push(`${r.unknown} unrecognised updates`);
  if (r.duplicates > 0) notes.push(`${r.duplicates} duplicates`);
  // Open loop: sends that left late mean the generator did not get the CPU it needed, either
  // because server and generator together used up both cores or because other work took them.
  if (r.sendLag.p99 > 5) notes.push(`send lag p99 ${r.sendLag.p99.toFixed(1)} ms`);
  if (generatorBound(row)) notes.push("generator-bound: server + generator used both cores");
  if ((row.other_cpu_percent ?? 0) > 25) notes.push(`noisy: other processes used ${row.other_cpu_percent!.toFixed(0)}% CPU`);
  if (r.errors.length > 0) notes.push(`errors: ${r.errors.slice(0, 2).join("; ")}`);
  return notes.join("; ");
}

export function runIdleCase(server: ServerName, context: CaseContext): Promise<CaseResult> {
  const { rooms, clientsPerRoom, warmClients } = context.config.idle;
  const plan: Omit<IdlePlan, "port" | "auth"> = {
    kind: "idle",
    server,
    roomPrefix: "idle",
    workers: context.config.generatorThreads,
    rooms,
    clientsPerRoom,
    warmClients,
  };
  const load = describeLoad("idle", context.config);
  return withServer({ scenario: "idle", server, load }, planRooms(plan), context, async (srv, auth, row) => {
    // A freshly started Node process gives back several MiB on its own some seconds after start
    // (far more than 2000 uWS sockets cost): measure only once that has happened.
    await sleep(Math.max(0, srv.listeningAt + MIN_SERVER_AGE_MS - performance.now()));
    // Each side is measured twice: how far two measurements of the same state disagree is the
    // noise, reported next to the per-connection figure.
    const before: number[] = [];
    const after: number[] = [];
    const outcome = await runLoad(
      { ...plan, port: srv.port, auth },
      {
        phase: async (name) => {
          const into = name === "warm" ? before : after;
          into.push(await settledRss(srv.pid), await settledRss(srv.pid));
        },
      },
      90_000,
      context.config.niceness,
    );
    if (outcome.result.kind !== "idle") throw new Error("unexpected result kind");
    const connected = outcome.result.connected;
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const noise = Math.max(Math.abs(before[0] - before[1]), Math.abs(after[0] - after[1]));
    row.idle = {
      ...outcome.result,
      rssBeforeBytes: mean(before),
      rssAfterBytes: mean(after),
      bytesPerConnection: connected > 0 ? (mean(after) - mean(before)) / connected : Number.NaN,
      noiseBytesPerConnection: connected > 0 ? noise / connected : Number.NaN,
    };
    row.server_usage = { cpuPercent: Number.NaN, rssPeakBytes: mean(after), rssEndBytes: after[1] };
    if (outcome.result.connectFailures > 0) row.note = `${outcome.result.connectFailures} clients failed to connect: ${outcome.result.errors[0] ?? ""}`;
  });
}

export function runJoinCase(server: ServerName, context: CaseContext): Promise<CaseResult> {
  const { clients: count, seedBytes, timeoutMs } = context.config.join;
  const load = describeLoad("join-storm", context.config);
  if (server === "relay") {
    return Promise.resolve({ scenario: "join-storm", server, load, status: "skipped", note: "n/a: the relay keeps no document", durationMs: 0 });
  }
  const plan: Omit<JoinPlan, "port" | "auth"> = {
    kind: "join",
    server,
    roomPrefix: "join",
    workers: context.config.generatorThreads,
    clients: count,
    seedBytes,
    timeoutMs,
  };
  return withServer({ scenario: "join-storm", server, load }, planRooms(plan), context, async (srv, auth, row) => {
    const sampler = new ProcessSampler(srv.pid);
    const outcome = await runLoad(
      { ...plan, port: srv.port, auth },
      {
        phase: async () => {
          sampler.start();
        },
      },
      timeoutMs * 2 + 30_000,
      context.config.niceness,
    );
    row.server_usage = sampler.stop();
    row.generator_usage = outcome.generator;
    if (outcome.result.kind !== "join") throw new Error("unexpected result kind");
    row.join = outcome.result;
    row.other_cpu_percent = otherCpu(outcome.machineCpuPercent, row);
    const notes: string[] = [];
    if (outcome.result.failed > 0) notes.push(`${outcome.result.failed} clients did not sync: ${outcome.result.errors[0] ?? ""}`);
    if (outcome.result.minSyncBytes < outcome.result.seededBytes) notes.push(`a client got only ${outcome.result.minSyncBytes} bytes`);
    if ((row.other_cpu_percent ?? 0) > 25) notes.push(`noisy: other processes used ${row.other_cpu_percent!.toFixed(0)}% CPU`);
    row.note = notes.join("; ");
  });
}
