// Applies a versioned schema (the store's, the directory's, the audit log's, ...) to a SQLite file.
// SQLite's part is only the locking: BEGIN IMMEDIATE takes the write lock first, so two processes
// opening the same file cannot both apply a migration.

import type { Database } from "better-sqlite3";
import { SQLITE } from "./sql-dialect.ts";
import { currentVersion, pendingMigrations, type VersionedSchema, versionStatements } from "./versioned-schema.ts";

/** Brings `target` up to its current version; refuses a file from a newer Parley. */
export function migrate(db: Database, target: VersionedSchema): number {
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
