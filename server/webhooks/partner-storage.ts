// Where partner events and webhooks are kept. One node alone: events.db and webhooks.db in the
// data directory, both served by ONE worker thread (partner-storage-worker.ts): a worker costs a
// thread and a compiler at every start, and these two stores are small and never busy at the
// same moment for long. Several nodes (DATABASE_URL): the same SQL on the shared Postgres, so a
// partner following events on any node sees the events derived on every node, and webhook
// deliveries are claimed by one node each (delivery-claims.ts).

import path from "node:path";
import { PgRunner } from "../sql/pg-runner.ts";
import { EVENTS_SCHEMA } from "../events/event-schema.ts";
import { type EventStore, eventStoreOver } from "../events/event-store.ts";
import { SqlEventStore } from "../events/sql-event-store.ts";
import { migrate } from "../sql/pg-migrate.ts";
import { SCHEMA_NAME, StorePool } from "../sql/pg-pool.ts";
import { type Promised, WorkerService, type WorkerThread } from "../sql/worker-service.ts";
import { type DeliveryClaims, PostgresDeliveryClaims, SOLE_NODE_CLAIMS } from "./delivery-claims.ts";
import type { PartnerStorageWorker } from "./partner-storage-worker.ts";
import { SqlWebhookStore } from "./sql-webhook-store.ts";
import { WEBHOOKS_SCHEMA } from "./webhook-schema.ts";
import { type WebhookStore, webhookStoreOver } from "./webhook-store.ts";
import { moduleBeside } from "../sql/module-url.ts";

/** The two stores, who delivers which endpoint, and how to close them (together). */
export interface PartnerStorage {
  events: EventStore;
  webhooks: WebhookStore;
  claims: DeliveryClaims;
  /** True when other nodes write the same stores (their followers must be woken across nodes). */
  shared: boolean;
  /** The worker threads it runs on (SQLite: one; Postgres: none), for /healthz. */
  workers: readonly WorkerThread[];
  close(): Promise<void>;
}

export interface PartnerStorageOptions {
  /** The data directory (where the SQLite files go when there is no database URL). */
  dataDir: string;
  /** postgres:// URL (DATABASE_URL); null or absent: SQLite. */
  databaseUrl?: string | null;
  /** Postgres only: schema to work in (tests isolate themselves this way); default: the search_path's. */
  schema?: string;
}

/**
 * Removes a conversation's partner events and every webhook copy of them (attempts, dead
 * letters): from every organisation when it is destroyed, from `org` alone when that
 * organisation deleted its side; `now` is the server's clock.
 */
export async function forgetPartnerCopies(storage: Pick<PartnerStorage, "events" | "webhooks">, conversation: string, now: number, org?: string): Promise<void> {
  // Webhook copies first: they are found through the events' ids.
  const ids = await storage.events.conversationEventIds(conversation);
  await storage.webhooks.forgetEvents(ids, org ?? null, now);
  if (org === undefined) await storage.events.forgetConversation(conversation);
  else await storage.events.forgetConversationFor(org, conversation);
}

/** Opens (creating and migrating when needed) the storage the options select. */
export function openPartnerStorage(options: PartnerStorageOptions): Promise<PartnerStorage> {
  return options.databaseUrl ? openPostgresPartnerStorage(options.databaseUrl, options.schema) : openSqlitePartnerStorage(options.dataDir);
}

/** Calls `<prefix>.<op>` on the worker as the methods of one store. */
function prefixed<T>(api: Promised<PartnerStorageWorker>, prefix: "events" | "webhooks"): T {
  const call = api as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  return new Proxy({} as Record<string, unknown>, {
    get: (_target, op) => (typeof op === "string" ? (...args: unknown[]) => call[`${prefix}.${op}`](...args) : undefined),
  }) as T;
}

async function openSqlitePartnerStorage(dataDir: string): Promise<PartnerStorage> {
  const service = await WorkerService.start<PartnerStorageWorker>(moduleBeside(import.meta.url, "./partner-storage-worker"), {
    eventsPath: path.join(dataDir, "events.db"),
    webhooksPath: path.join(dataDir, "webhooks.db"),
  }, { name: "partner storage worker" });
  const close = () => service.close();
  return {
    events: eventStoreOver(prefixed<Omit<EventStore, "close">>(service.api, "events"), close),
    webhooks: webhookStoreOver(prefixed<Omit<WebhookStore, "close">>(service.api, "webhooks"), close),
    claims: SOLE_NODE_CLAIMS,
    shared: false,
    workers: [service],
    close,
  };
}

async function openPostgresPartnerStorage(connectionString: string, schema: string | undefined): Promise<PartnerStorage> {
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error("schema must be a lowercase identifier (a-z, 0-9, _)");
  // Small: event appends are batched per commit burst, and the claims hold one connection.
  const pool = new StorePool({ connectionString, schema, poolSize: 5, connectTimeoutMs: 5000, queryTimeoutMs: 30_000 });
  try {
    await migrate(pool, schema, EVENTS_SCHEMA);
    await migrate(pool, schema, WEBHOOKS_SCHEMA);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  const runner = new PgRunner(pool);
  const claims = new PostgresDeliveryClaims(pool);
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= claims.close().then(() => pool.end());
    return closing;
  };
  // Bookkeeping commits without waiting for the WAL flush (see SqlEventStore.markDirty).
  const events = new SqlEventStore(runner, (work) =>
    runner.transaction(async (tx) => {
      await tx.get("SELECT set_config('synchronous_commit', 'off', true) AS setting");
      return work(tx);
    }),
  );
  return { events: eventStoreOver(events, close), webhooks: webhookStoreOver(new SqlWebhookStore(runner), close), claims, shared: true, workers: [], close };
}
