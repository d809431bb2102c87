// What a start has opened so far, so that a start failing halfway (a port in use, a refused
// store, a log behind its acknowledged heads) closes it all again instead of leaving a lock, a
// database, worker threads and timers behind: a second start in the same process would then be
// refused by the first one's leftovers.

import type { Logger } from "./logger.ts";

export class OpenedResources {
  private readonly closers = new Map<string, () => Promise<void> | void>();

  constructor(private readonly logger: Logger) {}

  /** Records how to close `name`, opened just now. */
  add(name: string, close: () => Promise<void> | void): void {
    this.closers.set(name, close);
  }

  /**
   * Closes what was opened: first those named in `order` (the order a normal stop uses, since
   * some closes need others still open), then the rest newest first. A close that fails is
   * logged and the others still run.
   */
  async closeAll(order: readonly string[]): Promise<void> {
    const rest = [...this.closers.keys()].filter((name) => !order.includes(name)).reverse();
    for (const name of [...rest, ...order]) {
      const close = this.closers.get(name);
      if (!close) continue;
      this.closers.delete(name);
      try {
        await close();
      } catch (error) {
        this.logger.error({ err: error, resource: name }, "a start that failed could not close what it had opened");
      }
    }
  }
}
