// Runs the real `parley` command as an operator would (a separate process), for tests of the CLI's
// output and exit codes.

import { execFile } from "node:child_process";
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
