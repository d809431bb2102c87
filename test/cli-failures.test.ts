// Every `parley` subcommand that fails says why in one line on stderr, with a non-zero exit code,
// never a stack trace: the real command in a process of its own, on data directories that are
// wrong in the ways an operator's are (empty, no keyring, no master key, a damaged key file).

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliRun, runParley } from "./helpers/parley-cli.ts";

let scratch: string;
/** A directory with nothing in it: no keyring.db, no master key. */
let empty: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "parley-cli-failures-"));
  empty = path.join(scratch, "empty");
  await mkdir(empty);
  await writeFile(path.join(scratch, "garbage.pem"), "not a key\n");
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Nothing from this process's environment decides where the command looks. */
const env = () => ({ PARLEY_DATA_DIR: path.join(scratch, "unused"), PARLEY_MASTER_KEY: "", PARLEY_MASTER_KEY_FILE: "", DATABASE_URL: "", REDIS_URL: "" });

/** Command lines that must fail, each for a reason of its own. */
const FAILING: { name: string; args: () => string[] }[] = [
  { name: "keys rotate-master without keyring.db", args: () => ["keys", "rotate-master", "--data-dir", empty] },
  { name: "audit verify without a master key", args: () => ["audit", "verify", "--all", "--data-dir", empty] },
  { name: "audit verify in a missing data directory", args: () => ["audit", "verify", "--all", "--data-dir", path.join(scratch, "typo")] },
  { name: "audit verify of a missing export", args: () => ["audit", "verify", "--file", path.join(scratch, "missing.jsonl")] },
  { name: "backup without a master key", args: () => ["backup", path.join(scratch, "out.backup"), "--data-dir", empty] },
  { name: "backup verify of a missing file", args: () => ["backup", "verify", path.join(scratch, "missing.backup"), "--data-dir", empty] },
  { name: "restore of a missing file", args: () => ["restore", path.join(scratch, "missing.backup"), "--data-dir", empty] },
  { name: "restore --resume with nothing to resume", args: () => ["restore", "--resume", "--data-dir", empty] },
  { name: "mail dkim-records of a damaged key", args: () => ["mail", "dkim-records", "--domain", "example.com", "--key", path.join(scratch, "garbage.pem")] },
  // An error no subcommand anticipates (the file system's): still one line.
  { name: "mail dkim-keygen into a file that cannot be a directory", args: () => ["mail", "dkim-keygen", "--domain", "example.com", "--out", path.join(scratch, "garbage.pem", "dkim.pem")] },
  { name: "user delete in a missing data directory", args: () => ["user", "delete", "--user", "usr_nobody", "--operator", "pat", "--data-dir", path.join(scratch, "missing")] },
  { name: "support revoke in a missing data directory", args: () => ["support", "revoke", "--grant", "sup_nothing", "--data-dir", path.join(scratch, "missing")] },
];

describe("a failing parley subcommand", () => {
  it("prints one line, no stack, and exits non-zero", async () => {
    const results: { name: string; run: CliRun }[] = [];
    const queue = [...FAILING];
    // A few processes at a time: the machine may be busy.
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) results.push({ name: next.name, run: await runParley(next.args(), env()) });
    };
    await Promise.all([worker(), worker(), worker()]);
    for (const { name, run } of results) {
      const said = `${name}: exit ${run.code}\n${run.stderr}`;
      expect(run.code, said).toBeGreaterThan(0);
      expect(run.stderr, said).not.toMatch(/^\s+at /m);
      expect(run.stderr.trim().split("\n"), said).toHaveLength(1);
      expect(run.stderr, said).toMatch(/^parley: \S/);
    }
    const byName = Object.fromEntries(results.map(({ name, run }) => [name, run.stderr.trim()]));
    expect(byName["keys rotate-master without keyring.db"]).toContain("keyring.db");
    expect(byName["audit verify without a master key"]).toContain("no master key");
    expect(byName["mail dkim-records of a damaged key"]).toContain("garbage.pem");
    expect(byName["user delete in a missing data directory"]).toContain(`no data directory ${path.join(scratch, "missing")}`);
    // Refused before anything is made there (no key files in a mistyped directory).
    expect(byName["audit verify in a missing data directory"]).toContain(`no data directory ${path.join(scratch, "typo")}`);
    expect(existsSync(path.join(scratch, "typo"))).toBe(false);
  }, 300_000);
});
