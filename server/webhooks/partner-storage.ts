// The embedded storage of partner events and webhooks: events.db and webhooks.db in the data
// directory, both served by ONE worker thread (partner-storage-worker.ts). A worker costs a
// thread and a compiler at every start; these two stores are small and never busy at the same
// moment for long, so they share one. Each is still reached through its own interface
// (EventStore, WebhookStore), which is where a Postgres version plugs in.

import path from "node:path";
import { type EventStore, eventStoreOver } from "../events/event-store.ts";
import type { SqliteEventStore } from "../events/sqlite-event-store.ts";
import { type Promised, WorkerService } from "../worker/worker-service.ts";
import type { PartnerStorageWorker } from "./partner-storage-worker.ts";
import type { SqliteWebhookStore } from "./sqlite-webhook-store.ts";
import { type WebhookStore, webhookStoreOver } from "./webhook-store.ts";

/** The two stores and how to close them (together). */
export interface PartnerStorage {
  events: EventStore;
  webhooks: WebhookStore;
  close(): Promise<void>;
}

/** Calls `<prefix>.<op>` on the worker as the methods of one store. */
function prefixed<T>(api: Promised<PartnerStorageWorker>, prefix: "events" | "webhooks"): T {
  const call = api as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  return new Proxy({} as Record<string, unknown>, {
    get: (_target, op) => (typeof op === "string" ? (...args: unknown[]) => call[`${prefix}.${op}`](...args) : undefined),
  }) as T;
}

/** Opens both stores in the data directory, in one worker thread. */
export async function openPartnerStorage(dataDir: string): Promise<PartnerStorage> {
  const service = await WorkerService.start<PartnerStorageWorker>(new URL("./partner-storage-worker.ts", import.meta.url), {
    eventsPath: path.join(dataDir, "events.db"),
    webhooksPath: path.join(dataDir, "webhooks.db"),
  });
  const close = () => service.close();
  return {
    events: eventStoreOver(prefixed<Omit<Promised<SqliteEventStore>, "close">>(service.api, "events"), close),
    webhooks: webhookStoreOver(prefixed<Omit<Promised<SqliteWebhookStore>, "close">>(service.api, "webhooks"), close),
    close,
  };
}
