// Worker-thread side of partner-storage.ts: the event store and the webhook store, each on its
// own SQLite file, answering operations named `events.<op>` and `webhooks.<op>`.

import type Database from "better-sqlite3";
import { EVENT_STORE_OPERATIONS } from "../events/sql-event-store.ts";
import { openSqliteEventStore } from "../events/sqlite-event-store.ts";
import { serialService } from "../sql/serial-service.ts";
import type { SyncService } from "../sql/worker-service.ts";
import { WEBHOOK_STORE_OPERATIONS } from "./sql-webhook-store.ts";
import { openSqliteWebhookStore } from "./sqlite-webhook-store.ts";

/** Both stores behind one worker. */
export type PartnerStorageWorker = SyncService & Record<string, unknown>;

/**
 * `target` whose `deleting` operations also empty the write-ahead log afterwards: until then the
 * WAL still holds the pages as they were before the delete, plaintext included. (secure_delete
 * zeroes the deleted cells in the database file; the old page images live on in the WAL.)
 */
function truncatingWalAfter<T extends object>(target: T, db: Database.Database, deleting: readonly (keyof T & string)[]): T {
  const wrapped: Record<string, unknown> = {};
  for (const op of deleting) {
    const call = target[op] as (...args: unknown[]) => Promise<unknown>;
    wrapped[op] = async (...args: unknown[]) => {
      const result = await call.apply(target, args);
      db.pragma("wal_checkpoint(TRUNCATE)");
      return result;
    };
  }
  return new Proxy(target, { get: (t, name, receiver) => (typeof name === "string" && name in wrapped ? wrapped[name] : Reflect.get(t, name, receiver)) });
}

/** Entry point for the worker thread (server/sql/worker-entry.mjs). */
export function openService(options: { eventsPath: string; webhooksPath: string }): PartnerStorageWorker {
  const events = openSqliteEventStore(options.eventsPath);
  const webhooks = openSqliteWebhookStore(options.webhooksPath);
  return serialService(
    [
      { prefix: "events", target: truncatingWalAfter(events.store, events.db, ["forgetConversation", "forgetConversationFor"]), operations: EVENT_STORE_OPERATIONS },
      { prefix: "webhooks", target: truncatingWalAfter(webhooks.store, webhooks.db, ["forgetEvents"]), operations: WEBHOOK_STORE_OPERATIONS },
    ],
    () => {
      events.db.close();
      webhooks.db.close();
    },
  ) as PartnerStorageWorker;
}
