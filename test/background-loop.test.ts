// Background jobs (checkpoints, retention, revalidation, polls) run through one loop: a failing
// run never leaves a promise unhandled, the next run waits longer while failures go on (doubling,
// up to a ceiling), and the loop recovers on the first success.

import { describe, expect, it } from "vitest";
import { createLogger } from "../server/platform/logger.ts";
import { startBackgroundLoop } from "../server/platform/background-loop.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("info", { write: (line: string) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

describe("background loop", () => {
  it("backs off while runs fail, logs each doubling, and recovers", async () => {
    const { lines, logger } = capture();
    const startedAt: number[] = [];
    let done!: () => void;
    const recovered = new Promise<void>((resolve) => (done = resolve));
    const loop = startBackgroundLoop({
      name: "probe",
      everyMs: 20,
      maxBackoffMs: 200,
      logger,
      run: async () => {
        startedAt.push(performance.now());
        if (startedAt.length <= 5) throw new Error("dependency down");
        done();
      },
    });
    await recovered;
    await loop.stop();
    const gaps = startedAt.slice(1).map((t, i) => t - startedAt[i]);
    // Timers never fire early (beyond rounding): each wait is at least the backoff for that failure.
    for (const [i, expected] of [20, 40, 80, 160, 200].entries()) expect(gaps[i]).toBeGreaterThanOrEqual(expected - 2);
    const failures = lines.filter((l) => l.msg === "probe failed; retrying with backoff").map((l) => l.failures);
    expect(failures).toEqual([1, 2, 4]);
    expect(lines.some((l) => l.msg === "probe: recovered" && l.failures === 5)).toBe(true);
    expect(loop.failures).toBe(0);
  });

  it("counts a synchronous throw as a failed run, not a crash", async () => {
    const { lines, logger } = capture();
    let runs = 0;
    const loop = startBackgroundLoop({
      name: "sync",
      everyMs: 5,
      logger,
      run: () => {
        runs += 1;
        throw new Error("bug");
      },
    });
    await expect.poll(() => runs, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    await loop.stop();
    expect(lines[0]).toMatchObject({ task: "sync", err: { message: "bug" } });
  });
});
