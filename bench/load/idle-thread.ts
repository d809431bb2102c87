// One generator thread's share of the idle scenario: connect and sync its clients, then hold the
// sockets open and silent until told to close them.

import { clients } from "../clients/index.ts";
import { BenchClient, withConcurrency } from "./bench-client.ts";
import type { ThreadContext } from "./fanout-worker.ts";
import { type IdlePlan, roomName } from "./plan.ts";

const CONNECT_CONCURRENCY = 100;

export class IdleThread {
  private readonly open: BenchClient[] = [];
  readonly errors: string[] = [];

  constructor(
    private readonly plan: IdlePlan,
    private readonly thread: ThreadContext,
  ) {}

  /** Connects this thread's clients; returns how many failed. */
  async connect(): Promise<number> {
    const { rooms, clientsPerRoom } = this.plan;
    const mine: number[] = [];
    for (let g = this.thread.index; g < rooms * clientsPerRoom; g += this.thread.count) mine.push(g);
    const outcomes = await withConcurrency(mine.length, CONNECT_CONCURRENCY, async (k) => {
      const client = new BenchClient(clients[this.plan.server], this.plan.port, roomName(this.plan, Math.floor(mine[k] / clientsPerRoom)), this.plan.auth);
      this.open.push(client);
      await client.synced;
    });
    const failures = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
    for (const failure of failures.slice(0, 10)) this.errors.push(`connect: ${(failure.reason as Error).message}`);
    return failures.length;
  }

  async close(): Promise<void> {
    await Promise.all(this.open.map((client) => client.close()));
  }
}
