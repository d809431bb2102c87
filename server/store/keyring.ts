// Where wrapped data keys live: APART from the data, so that destroying a conversation's data key
// (crypto-shredding) also makes every backup of its data unreadable.
//   - SQLite (embedded): the table `data_keys` in its own file, <dataDir>/keyring.db (beside
//     parley.db; its own WAL). `parley backup` must NOT copy keyring.db into data backups.
//   - Postgres: the table `data_keys` (version table `keyring_version`). Keep it out of
//     long-retained dumps of the data (pg_dump --exclude-table=data_keys, or a separate schema or
//     database with its own, short, retention); see README "Encryption at rest".
// A data key is created and durably committed before the first record that uses it (an orphan
// key is harmless), and destroyed before its conversation's rows are deleted.

import type { SqlDialect } from "../sql/sql-dialect.ts";
import type { VersionedSchema } from "../sql/versioned-schema.ts";

/** The keyring file name of the embedded store, in the data directory. */
export const KEYRING_FILE = "keyring.db";

const MIGRATIONS: readonly ((d: SqlDialect) => string)[] = [
  (d) => `
  CREATE TABLE IF NOT EXISTS data_keys (
    conversation_id TEXT PRIMARY KEY,
    master_key_id   TEXT NOT NULL,
    wrapped         ${d.bytes} NOT NULL,
    created_at      ${d.int64} NOT NULL
  );
  `,
];

export const KEYRING_SCHEMA: VersionedSchema = { name: "keyring", versionTable: "keyring_version", migrations: MIGRATIONS };

/** Row shape of DATA_KEY.select. */
export interface DataKeyRow {
  conversation_id: string;
  master_key_id: string;
  wrapped: Uint8Array;
}

export const DATA_KEY = {
  select: "SELECT conversation_id, master_key_id, wrapped FROM data_keys WHERE conversation_id = ?",
  /** conversation_id, master_key_id, wrapped, created_at. The first key stored for a conversation wins. */
  insert: "INSERT INTO data_keys (conversation_id, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING",
  delete: "DELETE FROM data_keys WHERE conversation_id = ?",
  /** Every master key id in use (start-up check, rotation). */
  masterIds: "SELECT DISTINCT master_key_id FROM data_keys",
  /** Rotation: a page of keys not yet wrapped by the new master key. */
  selectNotWrappedBy: "SELECT conversation_id, master_key_id, wrapped FROM data_keys WHERE master_key_id <> ? ORDER BY conversation_id LIMIT ?",
  /** Rotation: wrapped, master_key_id (new), conversation_id, master_key_id (old): only if unchanged meanwhile. */
  rewrap: "UPDATE data_keys SET wrapped = ?, master_key_id = ? WHERE conversation_id = ? AND master_key_id = ?",
} as const;
