// Applies the shared schema (../schema.ts) to a SQLite file. SQLite's part is only the locking:
// BEGIN IMMEDIATE takes the write lock first, so two processes opening the same file cannot both
// apply a migration.

import type { Database } from "better-sqlite3";
import {
  CREATE_SCHEMA_VERSION_TABLE,
  INSERT_SCHEMA_VERSION,
  migrationsFrom,
  SCHEMA_VERSION,
  SELECT_SCHEMA_VERSION,
  UPDATE_SCHEMA_VERSION,
} from "../schema.ts";
import { SQLITE } from "../sql-dialect.ts";

/** Brings the database up to SCHEMA_VERSION; refuses a file from a newer Parley. */
export function migrate(db: Database): number {
  db.exec(CREATE_SCHEMA_VERSION_TABLE);
  const run = db.transaction(() => {
    const row = db.prepare(SELECT_SCHEMA_VERSION).get() as { version: number } | undefined;
    const from = row?.version ?? 0;
    for (const script of migrationsFrom(from, SQLITE)) db.exec(script);
    if (!row) db.prepare(INSERT_SCHEMA_VERSION).run(SCHEMA_VERSION);
    else if (from !== SCHEMA_VERSION) db.prepare(UPDATE_SCHEMA_VERSION).run(SCHEMA_VERSION);
    return SCHEMA_VERSION;
  });
  return run.immediate();
}
