// Worker-thread side of partner-storage.ts: the event store and the webhook store, each on its
// own SQLite file, answering operations named `events.<op>` and `webhooks.<op>`.

import Database from "better-sqlite3";
import { SqliteEventStore } from "../events/sqlite-event-store.ts";
import type { SyncService } from "../worker/worker-service.ts";
import { SqliteWebhookStore } from "./sqlite-webhook-store.ts";

/** Both stores behind one worker. */
export type PartnerStorageWorker = SyncService & Record<string, unknown>;

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { eventsPath: string; webhooksPath: string }): PartnerStorageWorker {
  const events = new SqliteEventStore(new Database(options.eventsPath));
  const webhooks = new SqliteWebhookStore(new Database(options.webhooksPath));
  const service: Record<string, unknown> = {};
  const operations: string[] = ["close"];
  const expose = (prefix: string, store: SyncService) => {
    const methods = store as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const op of store.operations) {
      if (op === "close") continue;
      service[`${prefix}.${op}`] = (...args: unknown[]) => methods[op].apply(store, args);
      operations.push(`${prefix}.${op}`);
    }
  };
  expose("events", events);
  expose("webhooks", webhooks);
  return Object.assign(service, {
    operations,
    close() {
      events.close();
      webhooks.close();
    },
  });
}
