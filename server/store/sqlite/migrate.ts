// Applies a versioned schema (the store's ../schema.ts, or the directory's) to a SQLite file.
// SQLite's part is only the locking: BEGIN IMMEDIATE takes the write lock first, so two processes
// opening the same file cannot both apply a migration.

import type { Database } from "better-sqlite3";
import { STORE_SCHEMA } from "../schema.ts";
import { SQLITE } from "../sql-dialect.ts";
import { currentVersion, pendingMigrations, type VersionedSchema, versionStatements } from "../versioned-schema.ts";

/** Brings `target` (default: the store's schema) up to its current version; refuses a file from a newer Parley. */
export function migrate(db: Database, target: VersionedSchema = STORE_SCHEMA): number {
  const version = currentVersion(target);
  const statements = versionStatements(target);
  db.exec(statements.create);
  const run = db.transaction(() => {
    const row = db.prepare(statements.select).get() as { version: number } | undefined;
    const from = row?.version ?? 0;
    for (const script of pendingMigrations(target, from, SQLITE)) db.exec(script);
    if (!row) db.prepare(statements.insert).run(version);
    else if (from !== version) db.prepare(statements.update).run(version);
    return version;
  });
  return run.immediate();
}
