// Webhooks on the embedded default: their own SQLite file (webhooks.db), opened inside the
// partner-storage worker thread (partner-storage-worker.ts) and run by the shared SqlWebhookStore.

import Database from "better-sqlite3";
import { SqliteRunner } from "../sql/sqlite-runner.ts";
import { migrate } from "../sql/sqlite-migrate.ts";
import { SqlWebhookStore } from "./sql-webhook-store.ts";
import { WEBHOOKS_SCHEMA } from "./webhook-schema.ts";

/** Opens (creating or migrating) the webhooks file; returns the store and its database (to close). */
export function openSqliteWebhookStore(path: string): { store: SqlWebhookStore; db: Database.Database } {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  // NORMAL in WAL mode survives a process crash; an OS crash may lose the last few attempt
  // records, which can only mean an event delivered again (receivers deduplicate on its id).
  // FULL would cost an fsync per delivery and cap an endpoint at a few hundred a second.
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  // Dead letters and attempts of deleted events are overwritten, not left in free pages.
  db.pragma("secure_delete = ON");
  migrate(db, WEBHOOKS_SCHEMA);
  return { store: new SqlWebhookStore(new SqliteRunner(db)), db };
}
