// Makes the signed checkpoint of every interval, idle ones included: at each interval's end it
// signs the heads of every conversation and org chain that changed since the previous
// checkpoint, linked to that checkpoint. Every node runs one; the audit log's compare-and-set
// lets exactly one node store each interval's checkpoint.

import type { Logger } from "../platform/logger.ts";
import { type BackgroundLoop, startBackgroundLoop } from "../platform/background-loop.ts";
import type { Store } from "../store/store.ts";
import type { AuditLog } from "../directory/audit-log.ts";
import { CHECKPOINT_GENESIS, type CheckpointBody, chainRef, signCheckpoint } from "./checkpoint.ts";
import type { CheckpointKey } from "./checkpoint-key.ts";

/**
 * Heads that changed this long before the previous checkpoint are listed again: an entry's time
 * is taken before its transaction commits, so one committed just after a checkpoint read the
 * heads may carry a slightly earlier time. Listing an unchanged head again is harmless.
 */
const HEAD_OVERLAP_MS = 10_000;

export class Checkpointer {
  private loop: BackgroundLoop | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly deps: {
      log: AuditLog;
      store: Pick<Store, "listChainHeads">;
      key: CheckpointKey;
      /** Names chains in checkpoints by keyed hash (chainRef). */
      auditKey: Uint8Array;
      intervalSeconds: number;
      now: () => number;
      logger: Logger;
    },
  ) {}

  /**
   * Checks for a finished interval several times per interval (and at least every 5 s); while the
   * store or the audit log is down, less and less often (background-loop.ts), never crashing.
   */
  start(): void {
    const period = Math.min(5000, Math.max(250, (this.deps.intervalSeconds * 1000) / 4));
    this.loop = startBackgroundLoop({ name: "audit checkpoint", everyMs: period, logger: this.deps.logger, run: () => this.tick() });
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
    this.loop = null;
    await this.running;
  }

  /**
   * Makes the checkpoint of the last finished interval if none is stored for it yet. Returns the
   * interval checkpointed by this call, or null (nothing due, or another node did it).
   */
  tick(): Promise<number | null> {
    const work = (this.running ?? Promise.resolve()).catch(() => undefined).then(() => this.checkpointDue());
    // The chain of runs must never hold a rejection: the caller of this tick gets it, nobody else.
    this.running = work.then(
      () => undefined,
      () => undefined,
    );
    return work;
  }

  private async checkpointDue(): Promise<number | null> {
    const { log, store, key, intervalSeconds } = this.deps;
    const now = this.deps.now();
    const interval = Math.floor(now / (intervalSeconds * 1000)) - 1;
    if (interval < 0) return null;
    const last = await log.lastAuditCheckpoint();
    if (last && last.interval >= interval) return null;
    const lastBody = last ? (JSON.parse(last.body) as CheckpointBody) : null;
    const since = lastBody ? lastBody.at - HEAD_OVERLAP_MS : 0;
    const [conversations, orgs] = await Promise.all([store.listChainHeads(since), log.listOrgAuditHeads(since)]);
    const named = [...conversations.map((h) => ({ chain: `conversation:${h.conversation}`, seq: h.seq, hash: h.hash })), ...orgs];
    const heads = named.map((h) => ({ ...h, chain: chainRef(this.deps.auditKey, h.chain) }));
    const prev = last ? Buffer.from(last.hash).toString("hex") : CHECKPOINT_GENESIS;
    const checkpoint = signCheckpoint({ interval, intervalSeconds, at: now, prev, heads }, key);
    return (await log.insertAuditCheckpoint(checkpoint, last?.interval ?? null)) ? interval : null;
  }
}
