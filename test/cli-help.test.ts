// `parley --help` and `parley <command> --help` for every command: options and an example, exit 0,
// and nothing runs (`serve --help` starts no server, no data directory is touched). An unknown
// option is one clear line naming it and where to look, with exit code 2.

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_NAMES } from "../server/cli-help.ts";
import { runParley } from "./helpers/parley-cli.ts";

let scratch: string;
let dataDir: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "parley-cli-help-"));
  // Never created: a command that ran (instead of printing help or refusing) would create it.
  dataDir = path.join(scratch, "data");
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const env = () => ({ PARLEY_DATA_DIR: dataDir, PORT: "0" });

/** Runs every command line, a few processes at a time (the machine may be busy). */
async function runAll(lines: { name: string; args: string[] }[]) {
  const results: { name: string; run: Awaited<ReturnType<typeof runParley>> }[] = [];
  const queue = [...lines];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) results.push({ name: next.name, run: await runParley(next.args, env()) });
  };
  await Promise.all([worker(), worker(), worker()]);
  return results;
}

/** For each command, arguments that reach its option parser. */
const WITH_ACTION: Record<string, string[]> = {
  serve: ["serve"],
  token: ["token"],
  support: ["support", "grant"],
  audit: ["audit", "verify"],
  backup: ["backup"],
  restore: ["restore"],
  ledger: ["ledger", "replay"],
  user: ["user", "delete"],
  keys: ["keys", "rotate-master"],
  mail: ["mail", "dkim-keygen"],
};

describe("parley --help", () => {
  it("covers every command in this table", () => {
    expect(Object.keys(WITH_ACTION).sort()).toEqual([...COMMAND_NAMES].sort());
  });

  it("lists every command with an example", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const run = await runParley(args, env());
      expect(run.code).toBe(0);
      for (const name of COMMAND_NAMES) expect(run.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
      expect(run.stdout).toMatch(/example:\n {2}parley token/);
    }
  });

  it("prints each command's usage, options and example, and runs nothing", async () => {
    const runs = await runAll(
      COMMAND_NAMES.flatMap((name) => [
        { name, args: [name, "--help"] },
        { name, args: [...WITH_ACTION[name], "-h"] },
        { name, args: ["help", name] },
      ]),
    );
    for (const { name, run } of runs) {
      expect(run.code, `${name}: ${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(`usage:\n  parley ${name}`);
      expect(run.stdout).toMatch(/^options:/m);
      expect(run.stdout).toMatch(new RegExp(`^examples?:\\n {2}(\\S+=\\S+ )*parley ${name}`, "m"));
      expect(run.stdout).not.toContain('"msg":"listening"');
    }
    expect(existsSync(dataDir)).toBe(false);
  }, 180_000);

  it("names every option a command's parser takes", async () => {
    const run = await runParley(["token", "--help"], env());
    for (const option of ["--user", "--org", "--conversation", "--role", "--ttl", "--data-dir"]) expect(run.stdout).toContain(option);
    const audit = await runParley(["audit", "--help"], env());
    for (const option of ["--conversation", "--org", "--all", "--checkpoints", "--file", "--data-dir"]) expect(audit.stdout).toContain(option);
  });
});

describe("command-line mistakes", () => {
  it("refuses an unknown option on every command: one line, the option, where to look, exit 2", async () => {
    const runs = await runAll(COMMAND_NAMES.map((name) => ({ name, args: [...WITH_ACTION[name], "--bogus-option"] })));
    for (const { name, run } of runs) {
      expect(run.code, `${name}: ${run.stdout}${run.stderr}`).toBe(2);
      expect(run.stderr.trim()).toBe(`parley ${name}: unknown option '--bogus-option' (see parley ${name} --help)`);
      expect(run.stdout).not.toContain('"msg":"listening"');
    }
    expect(existsSync(dataDir)).toBe(false);
  }, 300_000);

  it("refuses an unknown command or a stray argument to serve", async () => {
    const unknown = await runParley(["serv"], env());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command or option "serv" (see parley --help)');
    const stray = await runParley(["serve", "8787"], env());
    expect(stray.code).toBe(2);
    expect(stray.stderr.trim()).toBe("parley serve: unexpected argument '8787' (see parley serve --help)");
    expect(existsSync(dataDir)).toBe(false);
  });
});
