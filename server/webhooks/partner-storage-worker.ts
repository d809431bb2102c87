// Worker-thread side of partner-storage.ts: the event store and the webhook store, each on its
// own SQLite file, answering operations named `events.<op>` and `webhooks.<op>`.

import { EVENT_STORE_OPERATIONS } from "../events/sql-event-store.ts";
import { openSqliteEventStore } from "../events/sqlite-event-store.ts";
import type { SyncService } from "../worker/worker-service.ts";
import { WEBHOOK_STORE_OPERATIONS } from "./sql-webhook-store.ts";
import { openSqliteWebhookStore } from "./sqlite-webhook-store.ts";

/** Both stores behind one worker. */
export type PartnerStorageWorker = SyncService & Record<string, unknown>;

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { eventsPath: string; webhooksPath: string }): PartnerStorageWorker {
  const events = openSqliteEventStore(options.eventsPath);
  const webhooks = openSqliteWebhookStore(options.webhooksPath);
  // Operations run strictly one after another: a transaction of one never interleaves with another.
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const result = tail.then(work);
    tail = result.catch(() => undefined);
    return result;
  };
  const service: Record<string, unknown> = {};
  const operations: string[] = ["close"];
  const expose = (prefix: string, store: object, names: readonly string[]) => {
    const methods = store as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const op of names) {
      service[`${prefix}.${op}`] = (...args: unknown[]) => serially(() => methods[op].apply(store, args));
      operations.push(`${prefix}.${op}`);
    }
  };
  expose("events", events.store, EVENT_STORE_OPERATIONS);
  expose("webhooks", webhooks.store, WEBHOOK_STORE_OPERATIONS);
  return Object.assign(service, {
    operations,
    close: () =>
      serially(async () => {
        events.db.close();
        webhooks.db.close();
      }),
  }) as unknown as PartnerStorageWorker;
}
