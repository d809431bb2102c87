// The store's schema and its migrations, written once for both backends (dialect holes filled
// from sql-dialect.ts). One table holds the log and the audit trail together, because every log
// entry IS an audit entry; snapshots sit beside it, chained through their own `snapshot` entry.

import type { SqlDialect } from "../sql/sql-dialect.ts";
import { currentVersion, type VersionedSchema } from "../sql/versioned-schema.ts";

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
  // A destroyed conversation leaves only its id and when it went: appends to it are refused, so
  // a late write (or a replayed deletion ledger) can never bring the conversation back.
  (d) => `
  CREATE TABLE IF NOT EXISTS destroyed_conversations (
    id           TEXT PRIMARY KEY,
    destroyed_at ${d.int64} NOT NULL
  )${d.smallRowTable};
  `,
  // Which actor first used each Yjs client id in a conversation (the document rules): written in
  // the same transaction as the append that first uses it, after the conversation's head is
  // locked, so two nodes racing on a first use cannot both win.
  (d) => `
  CREATE TABLE IF NOT EXISTS client_ids (
    conversation_id TEXT NOT NULL,
    client_id       ${d.int64} NOT NULL,
    user_id         TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    PRIMARY KEY (conversation_id, client_id)
  )${d.smallRowTable};
  `,
  // The session of the claiming append: a restore's ids are told apart by it (their entries are
  // attributed to the authors they name, which the restore checked).
  () => `
  ALTER TABLE client_ids ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
  `,
];

/** The store's schema: its tables and the table recording their version. */
export const STORE_SCHEMA: VersionedSchema = { name: "store", versionTable: "schema_version", migrations: MIGRATIONS };

/** The schema version this code writes. */
export const SCHEMA_VERSION = currentVersion(STORE_SCHEMA);
