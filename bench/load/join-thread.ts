// One generator thread's share of a join storm: on the signal it opens all its clients at once
// against the seeded document and records, per client, the time from opening the socket to
// receiving the full state (sync step 2).

import { clients } from "../clients/index.ts";
import { BenchClient } from "./bench-client.ts";
import { now } from "./clock.ts";
import { type JoinPlan, roomName } from "./plan.ts";
import type { ThreadContext } from "./thread-context.ts";

/** What one thread saw of the storm. */
export interface JoinThreadResult {
  synced: number;
  failed: number;
  /** Latest sync completion, process clock (ms). */
  lastSyncedAt: number;
  syncTimes: Float64Array;
  minSyncBytes: number;
  errors: string[];
}

export class JoinThread {
  private readonly joined: BenchClient[] = [];

  constructor(
    private readonly plan: JoinPlan,
    private readonly thread: ThreadContext,
  ) {}

  async storm(): Promise<JoinThreadResult> {
    const count = Math.floor(this.plan.clients / this.thread.count) + (this.thread.index < this.plan.clients % this.thread.count ? 1 : 0);
    const syncTimes: number[] = [];
    const errors: string[] = [];
    let lastSyncedAt = 0;
    let minSyncBytes = Number.POSITIVE_INFINITY;
    let failed = 0;
    await Promise.all(
      Array.from({ length: count }, async () => {
        const started = now();
        const client = new BenchClient(clients[this.plan.server], this.plan.port, roomName(this.plan, 0), this.plan.auth, this.plan.timeoutMs);
        this.joined.push(client);
        try {
          const bytes = await client.synced;
          const at = now();
          syncTimes.push(at - started);
          lastSyncedAt = Math.max(lastSyncedAt, at);
          minSyncBytes = Math.min(minSyncBytes, bytes);
        } catch (error) {
          failed++;
          if (errors.length < 10) errors.push(`join: ${(error as Error).message}`);
        }
      }),
    );
    return { synced: syncTimes.length, failed, lastSyncedAt, syncTimes: Float64Array.from(syncTimes), minSyncBytes, errors };
  }

  async close(): Promise<void> {
    await Promise.all(this.joined.map((client) => client.close()));
  }
}
