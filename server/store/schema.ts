// The store's schema and its migrations, written once for both backends (dialect holes filled
// from sql-dialect.ts). One table holds the log and the audit trail together, because every log
// entry IS an audit entry; snapshots sit beside it, chained through their own `snapshot` entry.

import type { SqlDialect } from "./sql-dialect.ts";

/** Each migration runs once, in order, in the same transaction as its version bump. Append only. */
const MIGRATIONS: readonly ((d: SqlDialect) => string)[] = [
  (d) => `
  CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT PRIMARY KEY,
    created_at ${d.int64} NOT NULL,
    head_seq   ${d.int64} NOT NULL,
    head_hash  ${d.bytes} NOT NULL,
    head_at    ${d.int64} NOT NULL
  )${d.smallRowTable};
  -- payload is NULL for snapshot entries: their content is the state in snapshots.
  -- Rows land in commit order at the end of the table (a SQLite rowid table, a Postgres heap), so
  -- a batch touching many conversations dirties a few pages, not one page per conversation.
  -- Clustering by (conversation_id, seq) (SQLite WITHOUT ROWID) measured 2-3.5x slower with
  -- 100-1000 conversations per batch; reads by conversation go through the primary-key index.
  CREATE TABLE IF NOT EXISTS entries (
    conversation_id TEXT NOT NULL,
    seq             ${d.int64} NOT NULL,
    at              ${d.int64} NOT NULL,
    user_id         TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    content_hmac    ${d.bytes} NOT NULL,
    prev_hash       ${d.bytes} NOT NULL,
    hash            ${d.bytes} NOT NULL,
    payload         ${d.bytes} NULL,
    PRIMARY KEY (conversation_id, seq)
  );
  -- States grow large, so never a WITHOUT ROWID table (that suits small rows only).
  CREATE TABLE IF NOT EXISTS snapshots (
    conversation_id TEXT NOT NULL,
    seq             ${d.int64} NOT NULL,
    covers          ${d.int64} NOT NULL,
    state           ${d.bytes} NOT NULL,
    PRIMARY KEY (conversation_id, seq)
  );
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Where the applied version is recorded: one row, created before anything else. */
export const CREATE_SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
export const SELECT_SCHEMA_VERSION = "SELECT version FROM schema_version";
export const INSERT_SCHEMA_VERSION = "INSERT INTO schema_version (version) VALUES (?)";
export const UPDATE_SCHEMA_VERSION = "UPDATE schema_version SET version = ?";

/**
 * The scripts that bring a database from version `from` to SCHEMA_VERSION (empty when current).
 * Refuses a database written by a newer Parley rather than guess at its layout.
 */
export function migrationsFrom(from: number, dialect: SqlDialect): string[] {
  if (from > SCHEMA_VERSION) {
    throw new Error(`database schema version ${from} is newer than this server's ${SCHEMA_VERSION}`);
  }
  return MIGRATIONS.slice(from).map((migration) => migration(dialect));
}
