// Test helpers: find the processes a benchmark runner started (every child carries
// BENCH_PARENT_PID=<runner pid> in its environment) and wait for conditions with a deadline.

import { readdirSync, readFileSync } from "node:fs";
import { processExists } from "../measure/proc.ts";

/** Pids of live processes whose environment names `runnerPid` as their benchmark parent. */
export function childrenOf(runnerPid: number): number[] {
  const marker = `BENCH_PARENT_PID=${runnerPid}\0`;
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(marker) && processExists(Number(entry))) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(condition: () => boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return condition();
}
