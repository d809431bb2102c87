// The retention sweep: the server deletes, by itself, what has been inactive too long.
// Rule for shared conversations: each party's side is deleted when the conversation has been
// inactive longer than THAT party's retention period (its people lose access then); the
// conversation is destroyed when the last side goes. So no party keeps data past its own policy,
// and none loses data before its own policy says so. A conversation under legal hold is skipped
// entirely: nothing about it changes while a hold remains.

import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import type { RetentionDirectory } from "../directory/retention-directory.ts";
import type { Logger } from "../platform/logger.ts";
import type { Mailer } from "../mail/mailer.ts";
import { startBackgroundLoop } from "../platform/background-loop.ts";
import type { Store } from "../store/store.ts";
import type { ConversationLifecycle } from "./conversation-lifecycle.ts";
import { RETENTION_BOUNDS } from "./lifecycle-routes.ts";

const DAY_MS = 24 * 3_600_000;
const PAGE = 100;

/** What one sweep did. */
export interface SweepOutcome {
  sidesDeleted: number;
  destroyed: string[];
  /** Conversations inactive long enough to be looked at further (the rest were skipped on their head's time). */
  examined: number;
  /** Outbox messages removed as older than the mail retention. */
  mailRemoved: number;
}

export interface SweepDeps {
  directory: Pick<RetentionDirectory, "listConversationIds" | "listLegalHolds" | "listConversationParties"> & Pick<ConversationDirectory, "getConversation">;
  store: Store;
  lifecycle: ConversationLifecycle;
  /** Kept mail past its retention goes with each sweep too. */
  mailer?: Pick<Mailer, "prune">;
  logger: Logger;
}

/**
 * The shortest retention period an organisation may choose. A conversation active more recently
 * than this is due for nothing, so the sweep skips it on its head's time alone, without asking
 * the directory about its parties or holds.
 */
const SHORTEST_RETENTION_MS = RETENTION_BOUNDS.min * DAY_MS;

/**
 * One pass over every conversation, at time `now`. Per page of conversation ids, one store
 * lookup of their last activity (the head's commit time kept with each append): no document is
 * loaded, and only conversations inactive at least the shortest retention period are looked at
 * further.
 */
export async function sweepRetention(deps: SweepDeps, now: number): Promise<SweepOutcome> {
  const { directory, store, lifecycle } = deps;
  const outcome: SweepOutcome = { sidesDeleted: 0, destroyed: [], examined: 0, mailRemoved: 0 };
  let after = "";
  for (;;) {
    const ids = await directory.listConversationIds(after, PAGE);
    const lastActive = await store.lastActivity(ids);
    for (const id of ids) {
      const active = lastActive.get(id);
      if (active !== undefined && now - active <= SHORTEST_RETENTION_MS) continue;
      outcome.examined++;
      if ((await directory.listLegalHolds(id)).length > 0) continue;
      const record = await directory.getConversation(id);
      if (!record) continue;
      const parties = await directory.listConversationParties(id);
      const inactiveMs = now - Math.max(record.createdAt, active ?? 0);
      const due = parties.filter((p) => p.sideDeletedAt === null && inactiveMs > p.retentionDays * DAY_MS);
      let destroyed = false;
      for (const party of due) {
        const result = await lifecycle.deleteSide(id, party.orgId, "system", "retention");
        outcome.sidesDeleted++;
        destroyed ||= result.destroyed;
      }
      // Every side gone earlier while a hold (since lifted) waited: destroy now. (Lifting a hold
      // reconsiders at once; this catches a lift interrupted before it could.)
      if (!destroyed && due.length === 0 && parties.length > 0 && parties.every((p) => p.sideDeletedAt !== null)) {
        destroyed = (await lifecycle.reconsider(id, "system")).destroyed;
      }
      if (destroyed) outcome.destroyed.push(id);
    }
    if (ids.length < PAGE) break;
    after = ids[ids.length - 1];
  }
  outcome.mailRemoved = (await deps.mailer?.prune?.(now)) ?? 0;
  if (outcome.sidesDeleted > 0 || outcome.destroyed.length > 0 || outcome.mailRemoved > 0) deps.logger.info({ retention: outcome }, "retention sweep");
  return outcome;
}

/** Runs the sweep every `intervalMs` (one at a time, backing off while it fails); returns a stop function. */
export function scheduleRetentionSweep(deps: SweepDeps, intervalMs: number, now: () => number): () => void {
  const loop = startBackgroundLoop({ name: "retention sweep", everyMs: intervalMs, logger: deps.logger, run: () => sweepRetention(deps, now()) });
  return () => void loop.stop();
}
