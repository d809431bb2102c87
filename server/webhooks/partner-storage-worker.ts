// Worker-thread side of partner-storage.ts: the event store and the webhook store, each on its
// own SQLite file, answering operations named `events.<op>` and `webhooks.<op>`.

import { EVENT_STORE_OPERATIONS } from "../events/sql-event-store.ts";
import { openSqliteEventStore } from "../events/sqlite-event-store.ts";
import { serialService } from "../worker/serial-service.ts";
import type { SyncService } from "../worker/worker-service.ts";
import { WEBHOOK_STORE_OPERATIONS } from "./sql-webhook-store.ts";
import { openSqliteWebhookStore } from "./sqlite-webhook-store.ts";

/** Both stores behind one worker. */
export type PartnerStorageWorker = SyncService & Record<string, unknown>;

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { eventsPath: string; webhooksPath: string }): PartnerStorageWorker {
  const events = openSqliteEventStore(options.eventsPath);
  const webhooks = openSqliteWebhookStore(options.webhooksPath);
  return serialService(
    [
      { prefix: "events", target: events.store, operations: EVENT_STORE_OPERATIONS },
      { prefix: "webhooks", target: webhooks.store, operations: WEBHOOK_STORE_OPERATIONS },
    ],
    () => {
      events.db.close();
      webhooks.db.close();
    },
  ) as PartnerStorageWorker;
}
