// The committed lock file installs as it is: npm, given package.json and package-lock.json alone
// (as on a fresh clone), has nothing to change in it. Fails when a dependency is edited in
// package.json without regenerating the lock (`npm install --no-audit --no-fund`).

import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("package-lock.json", () => {
  it("is what npm install would write for package.json", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "parley-lock-"));
    for (const file of ["package.json", "package-lock.json"]) await copyFile(path.join(root, file), path.join(dir, file));
    // Resolves the tree and rewrites the lock only (no download, no install scripts); npm's cache
    // or the registry answers the metadata.
    await promisify(execFile)("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: dir,
      timeout: 180_000,
    });
    const [committed, rewritten] = await Promise.all([readFile(path.join(root, "package-lock.json"), "utf8"), readFile(path.join(dir, "package-lock.json"), "utf8")]);
    expect(rewritten === committed, "npm install would rewrite package-lock.json: regenerate and commit it").toBe(true);
  }, 240_000);
});
