// The forked load generator process, seen from the runner: started once and reused for every
// case (a failed or timed-out case replaces it). run() walks one plan's phases: the caller's hooks
// measure the server at each phase or mark, and the generator's own CPU is sampled over the
// measured window so the report can tell when the generator, not the server, was the limit.

import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import type { GeneratorMessage, LoadPlan, LoadResult, PhaseName, RunnerMessage } from "../load/plan.ts";
import { MachineSampler } from "../measure/machine.ts";
import { ProcessSampler, type ProcessUsage } from "../measure/sampler.ts";
import { nodeCommand } from "../servers/launch.ts";
import { REPO_ROOT } from "../servers/registry.ts";
import { stopChild, track } from "./children.ts";

export interface LoadHooks {
  /** The generator is waiting in `name` until this resolves. */
  phase?(name: PhaseName): Promise<void>;
  /** The measured window starts or ends. */
  mark?(name: "measure-start" | "measure-end"): void;
}

export interface LoadOutcome {
  result: LoadResult;
  /** The generator's CPU and memory over the measured window (from "seeded" on for a join storm). */
  generator: ProcessUsage;
  /** Busy CPU of the whole machine over the same window, percent of one core. */
  machineCpuPercent: number;
}

const NO_USAGE: ProcessUsage = { cpuPercent: Number.NaN, rssPeakBytes: Number.NaN, rssEndBytes: Number.NaN };

let current: ChildProcess | undefined;

function generator(niceness: number): ChildProcess {
  if (current && current.exitCode === null && current.signalCode === null && current.connected) return current;
  const script = ["--import", "tsx", "--import", join(REPO_ROOT, "bench/servers/guard.mjs"), join(REPO_ROOT, "bench/load/generator.ts")];
  const { command, args } = nodeCommand(script, niceness);
  current = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_PARENT_PID: String(process.pid) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  track(current);
  return current;
}

/** Stops the generator process (at the end of the suite, or after a failed run). */
export async function stopGenerator(): Promise<void> {
  const child = current;
  current = undefined;
  if (child) await stopChild(child, 2000);
}

/** Runs one plan; `niceness` applies when the generator process has to be (re)started. */
export async function runLoad(plan: LoadPlan, hooks: LoadHooks, timeoutMs: number, niceness = 0): Promise<LoadOutcome> {
  const child = generator(niceness);
  const sampler = new ProcessSampler(child.pid!);
  const machine = new MachineSampler();
  let usage: ProcessUsage | undefined;
  let machineCpuPercent = Number.NaN;
  let sampling = false;
  const startSampling = () => {
    if (sampling) return;
    sampler.start();
    machine.start();
    sampling = true;
  };
  const stopSampling = () => {
    if (!sampling) return;
    sampling = false;
    usage = sampler.stop();
    machineCpuPercent = machine.stop();
  };
  const tell = (message: RunnerMessage) => child.send(message);

  let onMessage: ((message: GeneratorMessage) => void) | undefined;
  let onExit: ((code: number | null, signal: string | null) => void) | undefined;
  try {
    const result = await new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator did not finish within ${timeoutMs} ms`)), timeoutMs);
      const finish = (error: Error | undefined, result?: LoadResult) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(result!);
      };
      onMessage = (message) => {
        switch (message.type) {
          case "phase":
            if (message.name === "seeded") startSampling();
            (hooks.phase?.(message.name) ?? Promise.resolve()).then(
              () => tell({ type: "continue" }),
              (error: Error) => finish(error),
            );
            return;
          case "mark":
            if (message.name === "measure-start") startSampling();
            else stopSampling();
            hooks.mark?.(message.name);
            return;
          case "result":
            finish(undefined, message.result);
            return;
          case "failed":
            finish(new Error(`load generator failed: ${message.error}`));
            return;
        }
      };
      onExit = (code, signal) => finish(new Error(`load generator exited (code ${code}, signal ${signal}) without a result`));
      child.on("message", onMessage);
      child.once("exit", onExit);
      tell({ type: "run", plan });
    });
    stopSampling();
    return { result, generator: usage ?? NO_USAGE, machineCpuPercent };
  } catch (error) {
    // Whatever state it is in, the next case gets a fresh generator.
    await stopGenerator();
    throw error;
  } finally {
    stopSampling();
    if (onMessage) child.off("message", onMessage);
    if (onExit) child.off("exit", onExit);
  }
}
