// Runs the real `parley` command as an operator would (a separate process), for tests of the CLI's
// output and exit codes.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/parley.js");
const execFileAsync = promisify(execFile);

/** What one run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `parley <args>` with `env` added to this process's environment; never throws on a non-zero exit. */
export async function runParley(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A `parley` command running in a child process of its own (to be killed mid-way). */
export function spawnParley(args: string[], env: Record<string, string> = {}): { process: ChildProcess; exited: Promise<number | string> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return { process: child, exited };
}
