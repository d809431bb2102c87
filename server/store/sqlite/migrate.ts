// The SQLite schema and its migrations. One table holds the log and the audit trail together,
// because every log entry IS an audit entry; snapshots sit beside it and are chained through
// their own `snapshot` log entry. Migrations only ever append to the list below.

import type { Database } from "better-sqlite3";

/** Each migration runs once, in order, in the same transaction as its version bump. */
const MIGRATIONS: readonly string[] = [
  `
  -- Small rows updated in place on every commit: one B-tree (WITHOUT ROWID) instead of two.
  CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    head_seq   INTEGER NOT NULL,
    head_hash  BLOB NOT NULL,
    head_at    INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- payload is NULL for snapshot entries: their content is the state in snapshots.
  -- A rowid table on purpose: rows land in commit order at the end of the table, so a batch
  -- touching many conversations dirties a few pages, not one page per conversation. Clustering
  -- by (conversation_id, seq) (WITHOUT ROWID) measured 2-3.5x slower with 100-1000 conversations
  -- per batch; reads by conversation go through the primary-key index and stay as fast.
  CREATE TABLE IF NOT EXISTS entries (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    content_hmac    BLOB NOT NULL,
    prev_hash       BLOB NOT NULL,
    hash            BLOB NOT NULL,
    payload         BLOB NULL,
    PRIMARY KEY (conversation_id, seq)
  );
  -- A rowid table: states grow large, and WITHOUT ROWID suits small rows only.
  CREATE TABLE IF NOT EXISTS snapshots (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    covers          INTEGER NOT NULL,
    state           BLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq)
  );
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database up to SCHEMA_VERSION. Takes the write lock first so two processes
 * opening the same file cannot both apply a migration. Refuses a file from a newer Parley.
 */
export function migrate(db: Database): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const run = db.transaction(() => {
    const row = db.prepare("SELECT version FROM schema_version").get() as { version: number } | undefined;
    const from = row?.version ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new Error(`database schema version ${from} is newer than this server's ${SCHEMA_VERSION}`);
    }
    for (let v = from; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    if (!row) db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(SCHEMA_VERSION);
    else if (from !== SCHEMA_VERSION) db.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION);
    return SCHEMA_VERSION;
  });
  return run.immediate();
}
