// Every child process the benchmark starts is registered here, and killed when the runner exits,
// is interrupted (SIGINT, SIGTERM, SIGHUP) or fails with an uncaught error. Children also carry
// bench/servers/guard.mjs, which kills them if this process dies without running these handlers.

import type { ChildProcess } from "node:child_process";
import { processExists } from "../measure/proc.ts";

const live = new Set<ChildProcess>();
let installed = false;

/** Tracks a child until it exits. */
export function track(child: ChildProcess): void {
  installCleanup();
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** Kills every tracked child at once (SIGKILL); safe to call from an 'exit' handler. */
export function killAllNow(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

/** Stops one child: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined) return;
  const pid = child.pid;
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (processExists(pid)) child.kill("SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.once("exit", killAllNow);
  // Exit as the signal would have: 128 + its number.
  for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const) {
    process.once(signal, () => {
      if (live.size > 0) process.stderr.write(`[bench] ${signal}: stopping ${live.size} child process(es)\n`);
      killAllNow();
      process.exit(128 + number);
    });
  }
  process.once("uncaughtException", (error) => {
    process.stderr.write(`[bench] uncaught error: ${error.stack ?? error}\n`);
    killAllNow();
    process.exit(1);
  });
  process.once("unhandledRejection", (reason) => {
    process.stderr.write(`[bench] unhandled rejection: ${reason instanceof Error ? reason.stack : reason}\n`);
    killAllNow();
    process.exit(1);
  });
}
