// Runs every selected scenario against every selected server (relay first: the other rows are
// compared with it), then step mode in --full, within the suite's time budget; collects the rows.

import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import type { ServerName } from "../clients/index.ts";
import { type HttpBenchResult, httpNotRun, runHttpBenchmarks } from "../http/autocannon.ts";
import { ensureParleyBuild } from "../servers/parley-build.ts";
import { REPO_ROOT } from "../servers/registry.ts";
import { stopGenerator } from "./load-process.ts";
import type { CaseResult } from "./result.ts";
import { type CaseContext, runClusterCases, runFanoutCase, runIdleCase, runJoinCase } from "./run-case.ts";
import { describeLoad, type ScenarioName, type SuiteConfig } from "./scenarios.ts";
import { ServerPool } from "./server-pool.ts";
import { findSustainedRate, type StepOutcome } from "./step-mode.ts";

/** Everything one invocation measured: written to latest.json, rendered to latest.md. */
export interface SuiteReport {
  command: string;
  mode: SuiteConfig["mode"];
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; memoryGiB: number; node: string; loadAverageAtStart: number[] };
  commit: string;
  config: SuiteConfig;
  rows: CaseResult[];
  steps: StepOutcome[];
  http: HttpBenchResult[];
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function runScenario(scenario: ScenarioName, server: ServerName, context: CaseContext): Promise<CaseResult> {
  const config = context.config;
  switch (scenario) {
    case "broadcast":
    case "chatty":
    case "big-room":
    case "join-load":
      return runFanoutCase(scenario, server, config.fanout[scenario], config.timing, context);
    case "idle":
      return runIdleCase(server, context);
    case "join-storm":
      return runJoinCase(server, context);
    case "cluster":
      // Two rows for Parley (see runClusterRows); the others have no cluster mode here.
      return Promise.resolve({ scenario, server, load: describeLoad(scenario, config), status: "skipped", note: CLUSTER_NA[server], durationMs: 0 });
  }
}

const CLUSTER_NA: Record<ServerName, string> = {
  relay: "n/a: one process by design",
  parley: "",
  hocuspocus: "n/a: @hocuspocus/extension-redis not benchmarked",
  "y-websocket": "n/a: no cluster mode",
};

// Idle first, on a fresh server: after other scenarios, new sockets reuse memory their clients
// left behind and the per-connection cost comes out far too low. The 5 MiB document comes last.
const RUN_ORDER: readonly ScenarioName[] = ["idle", "broadcast", "chatty", "big-room", "join-load", "join-storm", "cluster"];

/** A case's usual duration on the reference machine (Parley starts slower and joins slower). */
function expectedCaseMs(scenario: ScenarioName, server: ServerName, config: SuiteConfig): number {
  const t = config.timing;
  const start = server === "parley" ? 4000 : 1000;
  if (scenario === "join-storm") return start + config.join.clients * (server === "parley" ? 200 : 60);
  if (scenario === "idle") return start + 20_000;
  // One node (migrations on a fresh schema), then a second node joins: two runs.
  if (scenario === "cluster") return 2 * (start + 2000 + t.warmupMs + t.measureMs + t.drainMs);
  return start + 2000 + t.warmupMs + t.measureMs + t.drainMs;
}

/** The HTTP benchmarks' usual duration: a server start, the setup (argon2 sign-up), three timed runs. */
function expectedHttpMs(config: SuiteConfig): number {
  return 10_000 + 3 * config.httpSeconds * 1000;
}

function describe(row: CaseResult): string {
  const seconds = `${(row.durationMs / 1000).toFixed(1)} s`;
  if (row.status !== "ok") return `${row.note} (${seconds})`;
  if (row.fanout) {
    const f = row.fanout;
    const joins = f.joins ? `, ${f.joins.synced}/${f.joins.attempted} joined in ${(f.joins.allSyncedMs / 1000).toFixed(2)} s` : "";
    return `${f.deliveriesPerSec.toFixed(0)} deliveries/s, loss ${f.loss}, p99 ${f.latency.p99?.toFixed(1) ?? "—"} ms${joins} (${seconds})`;
  }
  if (row.idle) {
    const { bytesPerConnection, noiseBytesPerConnection } = row.idle;
    return `${(bytesPerConnection / 1024).toFixed(1)} ± ${(noiseBytesPerConnection / 1024).toFixed(1)} KiB per idle connection (${seconds})`;
  }
  if (row.join) return `${row.join.synced} synced in ${(row.join.allSyncedMs / 1000).toFixed(1)} s (${seconds})`;
  return seconds;
}

export async function runSuite(
  config: SuiteConfig,
  servers: readonly ServerName[],
  scenarios: readonly ScenarioName[],
  command: string,
  log: (line: string) => void,
): Promise<SuiteReport> {
  const started = performance.now();
  const report: SuiteReport = {
    command,
    mode: config.mode,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageAtStart: loadavg() },
    commit: gitCommit(),
    config,
    rows: [],
    steps: [],
    http: [],
  };
  const ordered = [...servers].sort((a, b) => (a === "relay" ? -1 : b === "relay" ? 1 : 0));
  const overBudget = () => performance.now() - started > config.budgetMs;
  // Start a case only if its usual duration still fits: the budget is a promise, not a hope.
  // The cluster and HTTP runs come last: the cases before them leave their time free.
  const httpReserve = servers.includes("parley") && config.httpSeconds > 0 ? expectedHttpMs(config) : 0;
  const clusterReserve = servers.includes("parley") && scenarios.includes("cluster") ? expectedCaseMs("cluster", "parley", config) : 0;
  const fitsBudget = (scenario: ScenarioName, server: ServerName, reserveMs: number) =>
    performance.now() - started + expectedCaseMs(scenario, server, config) + reserveMs <= config.budgetMs;
  // Parley runs compiled, as npm start runs it: built before the clock of any case starts.
  if (servers.includes("parley")) await ensureParleyBuild(REPO_ROOT, log);
  const context: CaseContext = { config, pool: new ServerPool(config.shareServers, config.niceness) };
  const runOrder = [...scenarios].sort((a, b) => RUN_ORDER.indexOf(a) - RUN_ORDER.indexOf(b));
  try {
    await runCases();
  } finally {
    await context.pool.stopAll();
    await stopGenerator();
  }
  // Scenario by scenario, the relay first in each: the table's order.
  report.rows.sort((a, b) => scenarios.indexOf(a.scenario as ScenarioName) - scenarios.indexOf(b.scenario as ScenarioName));
  report.durationMs = performance.now() - started;
  return report;

  // The cluster scenario after the others (it starts its own nodes): Parley on one node, then on
  // two at the same load; the other servers' rows say why they have none.
  async function runClusterRows(): Promise<void> {
    for (const server of ordered) {
      if (server !== "parley") {
        report.rows.push(await runScenario("cluster", server, context));
        continue;
      }
      if (!fitsBudget("cluster", server, httpReserve)) {
        report.rows.push({ scenario: "cluster", server, load: describeLoad("cluster", config), status: "skipped", note: "skipped: suite time budget used up", durationMs: 0 });
        continue;
      }
      for (const row of await runClusterCases(context)) {
        report.rows.push(row);
        log(`cluster (${row.nodes} node${row.nodes! > 1 ? "s" : ""}) × parley: ${describe(row)}`);
      }
    }
  }

  // The HTTP benchmarks need a Parley of their own: run when Parley is one of the servers.
  async function runHttp(): Promise<void> {
    if (!servers.includes("parley")) {
      report.http = httpNotRun("skipped: parley is not among the selected servers");
    } else if (config.httpSeconds <= 0) {
      report.http = httpNotRun("skipped: --no-http");
    } else if (performance.now() - started + expectedHttpMs(config) > config.budgetMs) {
      report.http = httpNotRun("skipped: suite time budget used up");
    } else {
      report.http = await runHttpBenchmarks(config.httpSeconds, config.niceness, log);
    }
  }

  // Server by server, so only one server process is alive at a time.
  async function runCases(): Promise<void> {
    for (const server of ordered) {
      for (const scenario of runOrder) {
        if (scenario === "cluster") continue;
        const instant = scenario === "join-storm" && server === "relay";
        const row: CaseResult =
          !instant && !fitsBudget(scenario, server, clusterReserve + httpReserve)
            ? { scenario, server, load: describeLoad(scenario, config), status: "skipped", note: "skipped: suite time budget used up", durationMs: 0 }
            : await runScenario(scenario, server, context);
        report.rows.push(row);
        log(`${scenario} × ${server}: ${describe(row)}`);
      }
      await context.pool.stopAll();
    }
    if (scenarios.includes("cluster")) await runClusterRows();
    await runHttp();
    if (config.stepRates.length > 0 && scenarios.includes("chatty")) {
      // The relay's chatty row is already its ceiling: step mode is for the servers compared with it.
      for (const server of ordered.filter((name) => name !== "relay")) {
        if (overBudget()) break;
        report.steps.push(await findSustainedRate(server, context, log));
      }
    }
  }
}
