// Parley runs in the benchmark as `npm start` runs it: the compiled server (dist/, `npm run build`)
// through bin/parley.js, not the TypeScript sources through tsx (whose loader runs in every worker
// thread, with its own memory and helpers on the hot path). Built once per suite, only when a
// source under server/ or protocol/ is newer than the build; BENCH_PARLEY_SOURCE=1 runs the sources.

import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** How Parley is started: the arguments after node's own, for a command such as `serve`. */
export function parleyEntry(repoRoot: string): string[] {
  return process.env.BENCH_PARLEY_SOURCE === "1" ? ["--import", "tsx", join(repoRoot, "server/cli.ts")] : [join(repoRoot, "bin/parley.js")];
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts") || entry.name.endsWith(".mjs")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

let built: Promise<void> | undefined;

/** Builds dist/ unless it is newer than every server and protocol source (once per process). */
export function ensureParleyBuild(repoRoot: string, log: (line: string) => void = () => {}): Promise<void> {
  if (process.env.BENCH_PARLEY_SOURCE === "1") return Promise.resolve();
  built ??= (async () => {
    const cli = join(repoRoot, "dist/server/cli.js");
    const stale = !existsSync(cli) || statSync(cli).mtimeMs < Math.max(newestSource(join(repoRoot, "server")), newestSource(join(repoRoot, "protocol")));
    if (!stale) return;
    log("building Parley (npm run build), as npm start does");
    await run("npm", ["run", "build"], { cwd: repoRoot, timeout: 300_000 });
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}
