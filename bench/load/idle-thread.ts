// One generator thread's share of the idle scenario: connect and sync its share of the warm-up
// clients, then (on the signal) the rest, then hold every socket open and silent until told to
// close them.

import { clients } from "../clients/index.ts";
import { BenchClient, withConcurrency } from "./bench-client.ts";
import { type IdlePlan, roomName } from "./plan.ts";
import type { ThreadContext } from "./thread-context.ts";

const CONNECT_CONCURRENCY = 100;

/** What one thread reports after a connection stage. */
export interface IdleThreadResult {
  failures: number;
  errors: string[];
}

export class IdleThread {
  private readonly open: BenchClient[] = [];

  constructor(
    private readonly plan: IdlePlan,
    private readonly thread: ThreadContext,
  ) {}

  /** Connects this thread's warm-up clients (`warm`) or all the others. */
  async connect(warm: boolean): Promise<IdleThreadResult> {
    const { rooms, clientsPerRoom, warmClients } = this.plan;
    const mine: number[] = [];
    for (let g = this.thread.index; g < rooms * clientsPerRoom; g += this.thread.count) {
      if (g < warmClients === warm) mine.push(g);
    }
    const outcomes = await withConcurrency(mine.length, CONNECT_CONCURRENCY, async (k) => {
      const room = roomName(this.plan, Math.floor(mine[k] / clientsPerRoom));
      const client = new BenchClient(clients[this.plan.server], this.plan.port, room, this.plan.auth);
      this.open.push(client);
      await client.synced;
    });
    const failures = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
    return { failures: failures.length, errors: failures.slice(0, 10).map((f) => `connect: ${(f.reason as Error).message}`) };
  }

  async close(): Promise<void> {
    await Promise.all(this.open.map((client) => client.close()));
  }
}
