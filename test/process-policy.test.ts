// The process policy of `parley serve` (server/platform/process-policy.ts), run in a real
// process: an unhandled rejection is logged with its error and the process keeps serving; an
// uncaught exception is logged as fatal, the graceful shutdown runs, and the process exits 1.

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "helpers/process-policy-child.ts");

function run(mode: string): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, mode], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, stdout })));
}

describe("process policy", { timeout: 60_000 }, () => {
  it("logs an unhandled rejection with its error and keeps serving", async () => {
    const { code, stdout } = await run("rejection");
    expect(stdout).toContain("still serving");
    expect(code).toBe(0);
    const line = JSON.parse(stdout.split("\n").find((l) => l.includes("unhandled promise rejection")) ?? "{}");
    expect(line).toMatchObject({ level: 50, err: { message: "a background job forgot its catch" } });
  });

  it("logs an uncaught exception as fatal, shuts down gracefully and exits 1", async () => {
    const { code, stdout } = await run("exception");
    expect(code).toBe(1);
    expect(stdout).toContain("graceful shutdown ran");
    expect(stdout).not.toContain("still serving");
    const line = JSON.parse(stdout.split("\n").find((l) => l.includes("uncaught exception")) ?? "{}");
    expect(line).toMatchObject({ level: 60, err: { message: "a handler threw" } });
  });
});
