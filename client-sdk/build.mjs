// Builds the parley-client package into client-sdk/dist from a clean slate (stale files from an
// older build must never be packed) with the repository's TypeScript compiler. tsc rewrites the
// sources' relative `.ts` imports to `.js` in JavaScript but not in declarations, where a
// consumer's tsc would refuse them (TS5097): those are rewritten here.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const dist = path.join(here, "dist");
// typescript exports no bin path; its package.json is exported and bin/tsc sits beside it.
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin/tsc");

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: here, stdio: "inherit" });

const relativeTsSpecifier = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue;
  const file = path.join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(file, "utf8");
  if (entry.name.endsWith(".d.ts")) writeFileSync(file, text.replace(relativeTsSpecifier, "$1$2.js$3"));
  else if (relativeTsSpecifier.test(text)) throw new Error(`${file} still imports a .ts file`);
  relativeTsSpecifier.lastIndex = 0;
}
