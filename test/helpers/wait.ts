// The suite's one way to wait: for a condition (vitest's vi.waitFor polls it) or for an event
// (a Waiters set, re-checked whenever a test helper records something new). Never a fixed
// sleep before a positive assertion: a pause is either too short on a busy machine or wasted
// on a quiet one.
import { vi } from "vitest";

export interface WaitOptions {
  /** Named in the error when the condition does not hold in time. */
  what?: string;
  timeout?: number;
  interval?: number;
}

/** Resolves once `condition` holds; rejects naming `what` after `timeout` ms. A number is the timeout. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, options: WaitOptions | number = {}): Promise<void> {
  const { what = "condition", timeout = 30_000, interval = 20 } = typeof options === "number" ? { timeout: options } : options;
  await vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`not in time (${timeout} ms): ${what}`);
    },
    { timeout, interval },
  );
}

/**
 * Conditions waiting on something a helper records (frames, events, requests, mails): each is
 * re-checked when the helper calls `notify()`, so a wait ends on the event itself, not on a
 * poll. `pollMs` also re-checks on a timer, for conditions that read state the helper does not
 * record (another client's acknowledgements, say).
 */
export class Waiters {
  private readonly pending = new Set<() => void>();

  /**
   * Resolves with the first value `found` returns other than undefined; rejects with what
   * `found` throws, or with `describe()` after `timeoutMs`.
   */
  until<R>(found: () => R | undefined, timeoutMs: number, describe: () => string, pollMs?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        clearInterval(poll);
        this.pending.delete(check);
        settle();
      };
      const check = () => {
        let result: R | undefined;
        try {
          result = found();
        } catch (error) {
          finish(() => reject(error));
          return;
        }
        if (result !== undefined) finish(() => resolve(result));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(describe()))), timeoutMs);
      const poll = pollMs === undefined ? undefined : setInterval(check, pollMs);
      this.pending.add(check);
      check();
    });
  }

  /** Re-checks every pending condition. */
  notify(): void {
    for (const check of [...this.pending]) check();
  }
}
