// Runs one scenario against one server: a server process from the pool, a plan for the forked
// load generator, and the server's CPU and RSS sampled from /proc over the measured window.
// Never throws: a failure becomes a "failed" row with the reason.

import type { ServerName } from "../clients/index.ts";
import type { ClientAuth } from "../clients/protocol-client.ts";
import { type FanoutPlan, type IdlePlan, type JoinPlan, planRooms } from "../load/plan.ts";
import { rssBytes } from "../measure/proc.ts";
import { ProcessSampler, type ProcessUsage } from "../measure/sampler.ts";
import { clientAuth, type ServerUnderTest, unavailable } from "../servers/registry.ts";
import { runLoad } from "./load-process.ts";
import type { CaseResult } from "./result.ts";
import { describeFanout, describeLoad, type FanoutScenario, type SuiteConfig, type Timing } from "./scenarios.ts";
import type { ServerPool } from "./server-pool.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What every case needs besides its own parameters. */
export interface CaseContext {
  config: SuiteConfig;
  pool: ServerPool;
}

/** Averages a few RSS readings (the server's memory moves a little even when idle). */
async function steadyRss(pid: number, samples = 5, gapMs = 100): Promise<number> {
  let sum = 0;
  for (let i = 0; i < samples; i++) {
    sum += rssBytes(pid);
    await sleep(gapMs);
  }
  return sum / samples;
}

/** A row is clean when the server can be trusted for the next case. */
function clean(row: CaseResult): boolean {
  const f = row.fanout;
  return row.status === "ok" && (!f || (f.loss === 0 && f.closedDuringRun === 0 && f.connectFailures === 0));
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
    row.status = "failed";
    row.note = `failed: ${(error as Error).message.split("\n")[0].slice(0, 300)}`;
    if (server) process.stderr.write(`[bench] ${base.server} stderr tail:\n${server.stderrTail()}\n`);
  } finally {
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
): Promise<CaseResult> {
  const load = describeFanout(shape);
  const plan: Omit<FanoutPlan, "port" | "auth"> = {
    ...shape,
    kind: "fanout",
    server,
    roomPrefix: scenario.replace(":", ""),
    workers: context.config.generatorThreads,
    ...timing,
    acks: server === "parley",
  };
  return withServer({ scenario, server, load }, planRooms(plan), context, async (srv, auth, row) => {
    const sampler = new ProcessSampler(srv.pid);
    let usage: ProcessUsage | undefined;
    const outcome = await runLoad(
      { ...plan, port: srv.port, auth },
      {
        mark: (name) => {
          if (name === "measure-start") sampler.start();
          else usage = sampler.stop();
        },
      },
      60_000 + timing.warmupMs + timing.measureMs + timing.drainMs,
      context.config.niceness,
    );
    if (outcome.result.kind !== "fanout") throw new Error("unexpected result kind");
    row.fanout = outcome.result;
    row.server_usage = usage;
    row.generator_usage = outcome.generator;
    row.other_cpu_percent = otherCpu(outcome.machineCpuPercent, row);
    row.note = fanoutNote(row);
  });
}

function fanoutNote(row: CaseResult): string {
  const r = row.fanout!;
  const notes: string[] = [];
  if (r.connectFailures > 0) notes.push(`${r.connectFailures} clients failed to connect`);
  if (r.closedDuringRun > 0) notes.push(`${r.closedDuringRun} sockets closed by server`);
  if (r.unknown > 0) notes.push(`${r.unknown} unrecognised updates`);
  if (r.duplicates > 0) notes.push(`${r.duplicates} duplicates`);
  // Open loop: if sends left late, the generator (not the server) was short of CPU.
  if (r.sendLag.p99 > 5) notes.push(`generator behind: send lag p99 ${r.sendLag.p99.toFixed(1)} ms`);
  // Two cores in all: past ~180% together, server and generator are competing for CPU.
  const together = (row.server_usage?.cpuPercent ?? 0) + (row.generator_usage?.cpuPercent ?? 0);
  if (together > 180) notes.push(`machine saturated (server + generator ${together.toFixed(0)}% CPU)`);
  if ((row.other_cpu_percent ?? 0) > 25) notes.push(`noisy: other processes used ${row.other_cpu_percent!.toFixed(0)}% CPU`);
  if (r.errors.length > 0) notes.push(`errors: ${r.errors.slice(0, 2).join("; ")}`);
  return notes.join("; ");
}

export function runIdleCase(server: ServerName, context: CaseContext): Promise<CaseResult> {
  const { rooms, clientsPerRoom } = context.config.idle;
  const plan: Omit<IdlePlan, "port" | "auth"> = {
    kind: "idle",
    server,
    roomPrefix: "idle",
    workers: context.config.generatorThreads,
    rooms,
    clientsPerRoom,
  };
  const load = describeLoad("idle", context.config);
  return withServer({ scenario: "idle", server, load }, planRooms(plan), context, async (srv, auth, row) => {
    await sleep(500);
    const before = await steadyRss(srv.pid);
    let after = 0;
    const outcome = await runLoad(
      { ...plan, port: srv.port, auth },
      {
        phase: async () => {
          await sleep(1000);
          after = await steadyRss(srv.pid);
        },
      },
      90_000,
      context.config.niceness,
    );
    if (outcome.result.kind !== "idle") throw new Error("unexpected result kind");
    const connected = outcome.result.connected;
    row.idle = {
      ...outcome.result,
      rssBeforeBytes: before,
      rssAfterBytes: after,
      bytesPerConnection: connected > 0 ? (after - before) / connected : Number.NaN,
    };
    row.server_usage = { cpuPercent: Number.NaN, rssPeakBytes: after, rssEndBytes: after };
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
