// Starts one server under test as its own child process on 127.0.0.1 and waits for its
// `{"msg":"listening","port":n}` log line; stop() ends it (SIGTERM, then SIGKILL).

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { stopChild, track } from "../suite/children.ts";

/** How to start a server: node arguments, extra environment, working directory, priority. */
export interface LaunchSpec {
  name: string;
  nodeArgs: string[];
  env: Record<string, string>;
  cwd: string;
  /** Scheduling priority (nice value; negative = ahead of the machine's other work). Default 0. */
  niceness?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 3000 ms. */
  stopGraceMs?: number;
}

/** The command that runs node with `args` at `niceness` (through nice(1), which keeps the pid). */
export function nodeCommand(args: string[], niceness: number): { command: string; args: string[] } {
  return niceness === 0 ? { command: process.execPath, args } : { command: "nice", args: ["-n", String(niceness), process.execPath, ...args] };
}

/** A server that is up and listening. */
export interface RunningServer {
  pid: number;
  port: number;
  /** When it logged "listening" (performance.now()). */
  listeningAt: number;
  /** The last lines it wrote on stderr, for error reports. */
  stderrTail(): string;
  stop(): Promise<void>;
}

const TAIL_LINES = 20;

export async function launchServer(spec: LaunchSpec, timeoutMs = 20_000): Promise<RunningServer> {
  const { command, args } = nodeCommand(spec.nodeArgs, spec.niceness ?? 0);
  const child: ChildProcess = spawn(command, args, {
    cwd: spec.cwd,
    env: { ...serverEnvironment(), ...spec.env, BENCH_PARENT_PID: String(process.pid) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  createInterface({ input: child.stderr! }).on("line", remember);
  const stdout = createInterface({ input: child.stdout! });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${spec.name} did not log "listening" within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`${spec.name} exited before listening (code ${code}, signal ${signal}): ${tail.join("\n")}`));
    function fail(error: Error) {
      clearTimeout(timer);
      child.off("exit", onExit);
      if (child.exitCode === null) child.kill("SIGKILL");
      reject(error);
    }
    child.once("exit", onExit);
    stdout.on("line", (line) => {
      remember(line);
      const port = listeningPort(line);
      if (port === undefined) return;
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(port);
    });
  });

  return {
    pid: child.pid!,
    port,
    listeningAt: performance.now(),
    stderrTail: () => tail.join("\n"),
    stop: () => stopChild(child, spec.stopGraceMs),
  };
}

function listeningPort(line: string): number | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const record = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return record.msg === "listening" && typeof record.port === "number" ? record.port : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The runner's environment without Parley's settings: a DATABASE_URL or PARLEY_* left in the
 * shell must not quietly turn an "embedded defaults" server into another setup. Scenarios that
 * want them (the cluster) pass them in `spec.env`.
 */
function serverEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name === "DATABASE_URL" || name === "REDIS_URL" || name.startsWith("PARLEY_")) delete env[name];
  }
  return env;
}
