// The embedded directory's worker thread (started by sqlite-directory.ts through
// server/sql/): opens the SQLite file, brings its schema up to date, and runs each
// operation of the shared SqlDirectory against it, one operation at a time.

import Database from "better-sqlite3";
import { AUDIT_SCHEMA } from "../audit-schema.ts";
import { migrate } from "../../sql/sqlite-migrate.ts";
import { serialService } from "../../sql/serial-service.ts";
import type { SyncService } from "../../sql/worker-service.ts";
import { DIRECTORY_OPERATIONS, type Directory } from "../directory.ts";
import { DIRECTORY_SCHEMA } from "../directory-schema.ts";
import { SqlDirectory } from "../sql-directory.ts";
import { SqliteRunner } from "../../sql/sqlite-runner.ts";

/** What the worker serves: every directory operation, plus close. */
export type DirectoryWorker = SyncService & Directory;

/** Entry point for the worker thread (server/sql/worker-entry.mjs). */
export function openService(options: { path: string }): DirectoryWorker {
  const db = new Database(options.path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  // Deleted rows (erased persons, destroyed conversations) are overwritten, not left in free pages.
  db.pragma("secure_delete = ON");
  adoptUnversionedFile(db);
  migrate(db, DIRECTORY_SCHEMA);
  // The org audit tables too: audited changes append to them in the directory's own transaction.
  migrate(db, AUDIT_SCHEMA);
  const directory = new SqlDirectory(new SqliteRunner(db));
  return serialService([{ prefix: "", target: directory, operations: DIRECTORY_OPERATIONS }], () => db.close()) as unknown as DirectoryWorker;
}

/**
 * Files written before the directory schema was versioned hold version 1's tables, except that
 * the access side of conversations was called `conversations` (a name the Postgres log store
 * uses). Renames it in place (SQLite rewrites the foreign keys that point at it); migrate() then
 * records version 1 and adds what was missing.
 */
function adoptUnversionedFile(db: Database.Database): void {
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  db.transaction(() => {
    if (hasTable(DIRECTORY_SCHEMA.versionTable) || !hasTable("conversations")) return;
    db.exec(`
      DROP INDEX IF EXISTS conversations_by_org;
      DROP INDEX IF EXISTS conversations_by_ref;
      ALTER TABLE conversations RENAME TO conversation_records;
    `);
  }).immediate();
}
