// One way to run a periodic background job (checkpoints, retention, revalidation, polls): one run
// at a time, never a promise left unhandled, and while a run keeps failing (its dependency is
// down) the next one waits longer, doubling up to a ceiling, with a log line per doubling
// rather than per attempt. The first success after failures says so in the log.

import type { Logger } from "pino";

/** A running background job. */
export interface BackgroundLoop {
  /** Stops scheduling runs and waits for the one in flight (its failure is already logged). */
  stop(): Promise<void>;
  /** Consecutive failed runs so far (0 while healthy). */
  readonly failures: number;
}

export interface BackgroundLoopOptions {
  /** Names the job in logs. */
  name: string;
  /** Time between runs while they succeed. */
  everyMs: number;
  /** Longest wait between runs while they fail. Default: the larger of 30 s and `everyMs`. */
  maxBackoffMs?: number;
  logger: Logger;
  /** One run; a rejection (or a throw) counts as a failure. */
  run: () => Promise<unknown> | unknown;
}

/** Starts the job (first run after `everyMs`); timers never keep the process alive. */
export function startBackgroundLoop(options: BackgroundLoopOptions): BackgroundLoop {
  const maxBackoffMs = options.maxBackoffMs ?? Math.max(30_000, options.everyMs);
  let failures = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      running = runOnce().finally(() => {
        running = null;
      });
    }, delayMs);
    timer.unref();
  };

  const runOnce = async () => {
    try {
      await options.run();
      if (failures > 0) options.logger.info({ task: options.name, failures }, `${options.name}: recovered`);
      failures = 0;
      schedule(options.everyMs);
    } catch (error) {
      failures += 1;
      const delay = Math.min(maxBackoffMs, options.everyMs * 2 ** Math.min(failures - 1, 30));
      // A line for the first failure and each doubling: an outage is visible, not a flood.
      if ((failures & (failures - 1)) === 0) {
        options.logger.error({ err: error, task: options.name, failures, retryInMs: delay }, `${options.name} failed; retrying with backoff`);
      }
      schedule(delay);
    }
  };

  schedule(options.everyMs);
  return {
    get failures() {
      return failures;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
