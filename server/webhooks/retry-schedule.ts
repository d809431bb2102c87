// When a failed webhook delivery is tried again: exponential backoff with jitter, capped, for at
// least the retry window (24 h by default) before the event is parked; and when an endpoint that
// keeps failing is disabled. Plain functions over a policy, plus the injectable clock the
// dispatcher runs on (tests drive days of retries in milliseconds).

import type { Clock as WallClock } from "../platform/clock.ts";

/** The retry policy. */
export interface RetryPolicy {
  /** Delay before the second attempt; doubled for each further one. */
  baseMs: number;
  /** Longest delay between two attempts. */
  maxDelayMs: number;
  /** An item is parked at its first failure at least this long after its first failure. */
  windowMs: number;
  /** An endpoint without a success for this long is disabled. */
  disableAfterMs: number;
}

/**
 * Delay after the `failures`-th failed attempt: half the exponential step fixed, half random
 * ("equal jitter"), so endpoints that failed together do not retry in lockstep.
 */
export function retryDelay(failures: number, policy: Pick<RetryPolicy, "baseMs" | "maxDelayMs">, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 40));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** A clock and timers (the system's, or a test's). */
export interface Clock {
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * The real timers with the server's wall clock (platform/clock.ts): retries fall due by that
 * clock, so a test that moves it makes them due; timers do not keep the process alive.
 */
export const timersOn = (now: WallClock): Clock => ({
  now,
  setTimer: (callback, ms) => {
    const timer = setTimeout(callback, Math.min(ms, 2 ** 31 - 1));
    timer.unref();
    return timer;
  },
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
});
