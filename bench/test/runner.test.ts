// The runner end to end: the smoke suite covers every scenario × server and writes its report;
// SIGINT or a SIGKILLed runner leaves no child process behind; the time budget is honoured.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { requirePostgres, requireRedis } from "../../test/helpers/services.ts";
import { REPO_ROOT } from "../servers/registry.ts";
import { killAllNow } from "../suite/children.ts";
import { smokeConfig } from "../suite/scenarios.ts";
import type { SuiteReport } from "../suite/suite.ts";
import { runSuite } from "../suite/suite.ts";
import { childrenOf, waitFor } from "./processes.ts";

const out = mkdtempSync(join(tmpdir(), "bench-test-"));
afterAll(() => {
  killAllNow();
  rmSync(out, { recursive: true, force: true });
});

function startRunner(args: string[]): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe("bench/run.ts", () => {
  it("runs every scenario against every server in the smoke suite and writes the report", { timeout: 360_000 }, async () => {
    const runner = startRunner(["--smoke", "--out", out]);
    const code = await runner.exited;
    expect(code, runner.output()).toBe(0);
    const report = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as SuiteReport;
    const md = readFileSync(join(out, "latest.md"), "utf8");
    expect(runner.output()).toContain("| scenario | server |");
    expect(md).toContain("## HTTP (autocannon)");
    for (const bench of report.http) {
      expect(bench.status, `${bench.name}: ${bench.note}`).toBe("ok");
      expect(bench.requestsPerSec).toBeGreaterThan(0);
      expect(bench.non2xx, `${bench.name}: ${bench.note}`).toBe(0);
    }
    expect(report.http.find((h) => h.name === "login")?.note).toContain("argon2id m=");
    // The cluster rows need Postgres and Redis: without them they must say so (and CI fails).
    if ((await requirePostgres()) && (await requireRedis())) {
      for (const nodes of [2, 1]) {
        const row = report.rows.find((r) => r.scenario === "cluster" && r.nodes === nodes);
        expect(row?.status, `cluster on ${nodes} node(s): ${row?.note}`).toBe("ok");
        expect(row?.fanout?.loss).toBe(0);
        expect(row?.fanout?.receivedDeliveries).toBeGreaterThan(0);
      }
      expect(report.rows.find((r) => r.scenario === "cluster" && r.nodes === 2)?.node_usage).toHaveLength(2);
    } else {
      expect(report.rows.find((r) => r.scenario === "cluster" && r.server === "parley")?.note).toMatch(/skipped: (Postgres|Redis) is not reachable/);
    }
    expect(report.rows.find((r) => r.scenario === "cluster" && r.server === "hocuspocus")?.note).toMatch(/^n\/a/);
    for (const scenario of ["broadcast", "chatty", "big-room"]) {
      for (const server of ["relay", "hocuspocus", "y-websocket"]) {
        const row = report.rows.find((r) => r.scenario === scenario && r.server === server);
        expect(row?.status, `${scenario} × ${server}: ${row?.note}`).toBe("ok");
        expect(row?.fanout?.loss).toBe(0);
        expect(row?.fanout?.latency.count).toBeGreaterThan(0);
      }
    }
    expect(report.rows.find((r) => r.scenario === "join-storm" && r.server === "y-websocket")?.join?.synced).toBe(5);
    expect(report.rows.find((r) => r.scenario === "idle" && r.server === "relay")?.idle?.connected).toBe(10);
    expect(await waitFor(() => childrenOf(runner.child.pid!).length === 0, 3000)).toBe(true);
  });

  it("stops every child process on SIGINT", { timeout: 120_000 }, async () => {
    const runner = startRunner(["--smoke", "--out", join(out, "sigint")]);
    expect(await waitFor(() => childrenOf(runner.child.pid!).length > 0, 60_000), runner.output()).toBe(true);
    runner.child.kill("SIGINT");
    expect(await runner.exited).toBe(130);
    expect(await waitFor(() => childrenOf(runner.child.pid!).length === 0, 3000), String(childrenOf(runner.child.pid!))).toBe(true);
  });

  it("leaves no child behind when the runner itself is killed (SIGKILL)", { timeout: 120_000 }, async () => {
    const runner = startRunner(["--smoke", "--scenarios", "idle", "--out", join(out, "sigkill")]);
    expect(await waitFor(() => childrenOf(runner.child.pid!).length > 0, 60_000), runner.output()).toBe(true);
    runner.child.kill("SIGKILL");
    await runner.exited;
    // Children notice within the guard's 500 ms poll.
    expect(await waitFor(() => childrenOf(runner.child.pid!).length === 0, 5000), String(childrenOf(runner.child.pid!))).toBe(true);
  });

  it("skips the cases left when the time budget is used up", async () => {
    const report = await runSuite({ ...smokeConfig(), budgetMs: 0 }, ["relay"], ["broadcast", "join-storm", "cluster"], "test", () => {});
    expect(report.rows.map((r) => [r.scenario, r.note])).toEqual([
      ["broadcast", "skipped: suite time budget used up"],
      ["join-storm", "n/a: the relay keeps no document"],
      ["cluster", "n/a: one process by design"],
    ]);
  });
});
