// Runs every selected scenario against every selected server (relay first: the other rows are
// compared with it), then step mode in --full, within the suite's time budget; collects the rows.

import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import type { ServerName } from "../clients/index.ts";
import { type HttpBenchResult, runHttpBenchmarks } from "../http/autocannon.ts";
import { REPO_ROOT } from "../servers/registry.ts";
import { stopGenerator } from "./load-process.ts";
import type { CaseResult } from "./result.ts";
import { runFanoutCase, runIdleCase, runJoinCase } from "./run-case.ts";
import type { ScenarioName, SuiteConfig } from "./scenarios.ts";
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

function runScenario(scenario: ScenarioName, server: ServerName, config: SuiteConfig): Promise<CaseResult> {
  switch (scenario) {
    case "broadcast":
    case "chatty":
    case "big-room":
      return runFanoutCase(scenario, server, config.fanout[scenario], config.timing, config);
    case "idle":
      return runIdleCase(server, config);
    case "join-storm":
      return runJoinCase(server, config);
    case "cluster":
      return Promise.resolve({
        scenario,
        server,
        load: "two Parley nodes + Redis",
        status: "skipped",
        note: "skipped: needs the cluster issue",
        durationMs: 0,
      });
  }
}

function describe(row: CaseResult): string {
  const seconds = `${(row.durationMs / 1000).toFixed(1)} s`;
  if (row.status !== "ok") return `${row.note} (${seconds})`;
  if (row.fanout) {
    const f = row.fanout;
    return `${f.deliveriesPerSec.toFixed(0)} deliveries/s, loss ${f.loss}, p99 ${f.latency.p99.toFixed(1)} ms (${seconds})`;
  }
  if (row.idle) return `${(row.idle.bytesPerConnection / 1024).toFixed(1)} KiB per idle connection (${seconds})`;
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
  try {
    await runCases();
  } finally {
    await stopGenerator();
  }
  report.http = runHttpBenchmarks();
  for (const bench of report.http) log(`http ${bench.name}: ${bench.note}`);
  report.durationMs = performance.now() - started;
  return report;

  async function runCases(): Promise<void> {
    for (const scenario of scenarios) {
      for (const server of scenario === "cluster" ? (["parley"] as const) : ordered) {
        const instant = scenario === "cluster" || (scenario === "join-storm" && server === "relay");
        const row: CaseResult =
          overBudget() && !instant
            ? { scenario, server, load: "", status: "skipped", note: "skipped: suite time budget used up", durationMs: 0 }
            : await runScenario(scenario, server, config);
        report.rows.push(row);
        log(`${scenario} × ${server}: ${describe(row)}`);
      }
    }
    if (config.stepRates.length > 0 && scenarios.includes("chatty")) {
      for (const server of ordered) {
        if (overBudget()) break;
        report.steps.push(await findSustainedRate(server, config, log));
      }
    }
  }
}
