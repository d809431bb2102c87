// Partner events on the embedded default: their own SQLite file (events.db), opened inside the
// partner-storage worker thread (server/webhooks/partner-storage-worker.ts) and run by the shared
// SqlEventStore. Only what is SQLite's own is here: pragmas, and how bookkeeping skips the fsync.

import Database from "better-sqlite3";
import { SqliteRunner } from "../sql/sqlite-runner.ts";
import { migrate } from "../sql/sqlite-migrate.ts";
import { EVENTS_SCHEMA } from "./event-schema.ts";
import { SqlEventStore } from "./sql-event-store.ts";

/** Opens (creating or migrating) the events file; returns the store and its database (to close). */
export function openSqliteEventStore(path: string): { store: SqlEventStore; db: Database.Database } {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  // Events of a destroyed conversation (or a deleted side) are overwritten, not left in free pages.
  db.pragma("secure_delete = ON");
  migrate(db, EVENTS_SCHEMA);
  const runner = new SqliteRunner(db);
  // synchronous=NORMAL in WAL mode still survives a process crash; it is set outside the
  // transaction (SQLite ignores it inside one) and restored at once.
  const store = new SqlEventStore(runner, async (work) => {
    db.pragma("synchronous = NORMAL");
    try {
      return await runner.transaction(work);
    } finally {
      db.pragma("synchronous = FULL");
    }
  });
  return { store, db };
}
