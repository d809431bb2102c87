// Runs the real `parley serve` command as a child process (for crash tests: SIGKILL needs a
// process of its own), waits for its "listening" log line, and mints tokens with its keys.

import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Role } from "../../protocol/index.ts";
import { loadOrCreateKeys } from "../../server/crypto/keys.ts";
import { mintToken } from "../../server/auth/tokens.ts";
import { addOutbox } from "./mailboxes.ts";
import { systemClock } from "../../server/platform/clock.ts";

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/parley.js");

/** A server running in a child process. */
export interface ChildServer {
  process: ChildProcess;
  port: number;
  url: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** Starts `parley serve` on `dataDir` (port 0 unless given) and waits until it listens. */
export async function startChildServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  addOutbox(dataDir);
  const child = spawn(process.execPath, [BIN, "serve"], {
    // Load shedding off unless asked for (see server.ts): tests' writes are never refused for load.
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", PARLEY_DATA_DIR: dataDir, PARLEY_LOG_LEVEL: "info", PARLEY_SHED_LOOP_PERCENT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    // Generous: a fresh Node process loading TypeScript is slow on a busy 2-core machine.
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 60_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split("\n")) {
        if (line.includes('"msg":"listening"')) {
          clearTimeout(timer);
          resolve(JSON.parse(line).port as number);
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  return { process: child, port, url: `ws://127.0.0.1:${port}/ws`, exited };
}

/** Mints a token with the keys in a data directory (as `parley token` does). */
export async function childToken(dataDir: string, user: string, org: string, conversations: Record<string, Role>): Promise<string> {
  const keys = await loadOrCreateKeys(path.join(dataDir, "keys"));
  return mintToken(keys, { issuer: "parley", audience: "parley" }, { user, org, conversations, ttlSeconds: 3600 }, systemClock);
}
