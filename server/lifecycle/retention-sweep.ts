// The retention sweep: the server deletes, by itself, what has been inactive too long.
// Rule for shared conversations: each party's side is deleted when the conversation has been
// inactive longer than THAT party's retention period (its people lose access then); the
// conversation is destroyed when the last side goes. So no party keeps data past its own policy,
// and none loses data before its own policy says so. A conversation under legal hold is skipped
// entirely: nothing about it changes while a hold remains.

import type { Directory } from "../directory/directory.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import type { ConversationLifecycle } from "./conversation-lifecycle.ts";

const DAY_MS = 24 * 3_600_000;
const PAGE = 100;

/** What one sweep did. */
export interface SweepOutcome {
  sidesDeleted: number;
  destroyed: string[];
}

export interface SweepDeps {
  directory: Directory;
  store: Store;
  lifecycle: ConversationLifecycle;
  logger: Logger;
}

/**
 * When a conversation was last active: its last log entry, or its creation when it has none.
 * Reads the conversation's head through the store (a sweep runs rarely; a per-conversation
 * "last activity" column would make this one lookup).
 */
async function lastActivityAt(store: Store, conversationId: string, createdAt: number): Promise<number> {
  const { headSeq } = await store.loadDocument(conversationId);
  if (headSeq === 0) return createdAt;
  const [last] = await store.readEntries(conversationId, headSeq - 1, 1);
  return Math.max(createdAt, last?.at ?? 0);
}

/** One pass over every conversation, at time `now`. */
export async function sweepRetention(deps: SweepDeps, now: number): Promise<SweepOutcome> {
  const { directory, store, lifecycle } = deps;
  const outcome: SweepOutcome = { sidesDeleted: 0, destroyed: [] };
  let after = "";
  for (;;) {
    const ids = await directory.listConversationIds(after, PAGE);
    for (const id of ids) {
      if ((await directory.listLegalHolds(id)).length > 0) continue;
      const record = await directory.getConversation(id);
      if (!record) continue;
      const parties = await directory.listConversationParties(id);
      const inactiveMs = now - (await lastActivityAt(store, id, record.createdAt));
      const due = parties.filter((p) => p.sideDeletedAt === null && inactiveMs > p.retentionDays * DAY_MS);
      let destroyed = false;
      for (const party of due) {
        const result = await lifecycle.deleteSide(id, party.orgId, "system", "retention");
        outcome.sidesDeleted++;
        destroyed ||= result.destroyed;
      }
      // Every side gone earlier while a hold (since lifted) waited: destroy now.
      if (!destroyed && due.length === 0 && parties.length > 0 && parties.every((p) => p.sideDeletedAt !== null)) {
        destroyed = (await lifecycle.reconsider(id, "system")).destroyed;
      }
      if (destroyed) outcome.destroyed.push(id);
    }
    if (ids.length < PAGE) break;
    after = ids[ids.length - 1];
  }
  if (outcome.sidesDeleted > 0 || outcome.destroyed.length > 0) deps.logger.info({ retention: outcome }, "retention sweep");
  return outcome;
}

/** Runs the sweep every `intervalMs` (one at a time); returns a stop function. */
export function scheduleRetentionSweep(deps: SweepDeps, intervalMs: number, now: () => number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepRetention(deps, now())
      .catch((error: unknown) => deps.logger.error({ err: error }, "retention sweep failed"))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
