// The Postgres store's statements: the shared ones (../queries.ts) with numbered placeholders,
// plus what only Postgres does — row locks on conversation heads, many rows per statement through
// UNNEST, and the database clock. Each is a named prepared statement, parsed once per connection.

import type pg from "pg";
import { DATA_KEY } from "../keyring.ts";
import { CLIENT_ID, DESTROY, ENTRY, ENTRY_COLUMNS, HEAD, SNAPSHOT } from "../queries.ts";
import { numberedPlaceholders } from "../../sql/sql-dialect.ts";

/** A named statement: `with(values)` makes the query config for one call. */
export interface Statement {
  name: string;
  text: string;
  with(values: unknown[]): pg.QueryConfig;
}

function prepared(name: string, text: string): Statement {
  return { name, text, with: (values) => ({ name, text, values }) };
}

/**
 * The database's clock in milliseconds. Every node stamps entries with this one clock, so the
 * times in a conversation's chain do not depend on which node's clock wrote them.
 */
const NOW_MS = "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/** Row shape of LOCK_HEADS. */
export interface LockedHeadRow {
  id: string;
  head_seq: number;
  head_hash: Uint8Array;
  head_at: number;
  now: number;
}

export const PG = {
  selectHead: prepared("parley_select_head", numberedPlaceholders(HEAD.select)),
  selectUpdatesAfter: prepared("parley_select_updates_after", numberedPlaceholders(ENTRY.selectUpdatesAfter)),
  selectEntries: prepared("parley_select_entries", numberedPlaceholders(ENTRY.selectPage)),
  selectLatestSnapshot: prepared("parley_select_latest_snapshot", numberedPlaceholders(SNAPSHOT.selectLatest)),
  insertSnapshot: prepared("parley_insert_snapshot", numberedPlaceholders(SNAPSHOT.insert)),
  deleteEntries: prepared("parley_delete_entries", numberedPlaceholders(DESTROY.deleteEntries)),
  deleteSnapshots: prepared("parley_delete_snapshots", numberedPlaceholders(DESTROY.deleteSnapshots)),
  deleteHead: prepared("parley_delete_head", numberedPlaceholders(DESTROY.deleteHead)),
  deleteClientIds: prepared("parley_delete_client_ids", numberedPlaceholders(DESTROY.deleteClientIds)),
  /** $1 conversation ids, $2 client ids (pairwise). */
  selectClientIds: prepared(
    "parley_select_client_ids",
    `SELECT c.conversation_id, c.client_id, c.user_id, c.org_id FROM client_ids c
     JOIN UNNEST($1::text[], $2::bigint[]) AS t(conversation_id, client_id)
       ON c.conversation_id = t.conversation_id AND c.client_id = t.client_id`,
  ),
  selectAllClientIds: prepared("parley_select_all_client_ids", numberedPlaceholders(CLIENT_ID.selectAll)),
  /** $1 conversation ids, $2 client ids, $3 user ids, $4 org ids, $5 session ids. */
  insertClientIds: prepared(
    "parley_insert_client_ids",
    `INSERT INTO client_ids (conversation_id, client_id, user_id, org_id, session_id)
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
     ON CONFLICT (conversation_id, client_id) DO NOTHING`,
  ),
  selectDataKeys: prepared(
    "parley_select_data_keys",
    "SELECT conversation_id, master_key_id, wrapped FROM data_keys WHERE conversation_id = ANY($1::text[])",
  ),
  /** $1 ids, $2 master key ids, $3 wrapped keys, $4 created_at: every new data key of a batch in one statement. */
  insertDataKeys: prepared(
    "parley_insert_data_keys",
    `INSERT INTO data_keys (conversation_id, master_key_id, wrapped, created_at)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bigint[])
     ON CONFLICT (conversation_id) DO NOTHING`,
  ),
  /** $1 ids. */
  selectLastActivity: prepared("parley_select_last_activity", HEAD.lastActivityOf("SELECT UNNEST($1::text[])")),
  deleteDataKey: prepared("parley_delete_data_key", numberedPlaceholders(DATA_KEY.delete)),
  insertTombstone: prepared("parley_insert_tombstone", numberedPlaceholders(DESTROY.insertTombstone)),
  /** $1 ids. The destroyed ones among them. */
  selectTombstones: prepared("parley_select_tombstones", "SELECT id FROM destroyed_conversations WHERE id = ANY($1::text[])"),

  /**
   * $1 ids (sorted), $2 their genesis hashes. Creates the heads of new conversations so there is a
   * row to lock; a head another transaction is creating right now makes this wait for it. Sorted,
   * so two nodes creating the same conversations cannot deadlock.
   */
  ensureHeads: prepared(
    "parley_ensure_heads",
    `INSERT INTO conversations (id, created_at, head_seq, head_hash, head_at)
     SELECT id, ${NOW_MS}, 0, hash, 0 FROM UNNEST($1::text[], $2::bytea[]) AS t(id, hash)
     ON CONFLICT (id) DO NOTHING`,
  ),

  /**
   * $1 ids. Locks the heads in one fixed order (byte order of the id, whatever the database's
   * collation) so concurrent writers on several nodes queue behind each other instead of
   * deadlocking; the clock is read once the locks are held.
   */
  lockHeads: prepared(
    "parley_lock_heads",
    `SELECT h.id, h.head_seq, h.head_hash, h.head_at, ${NOW_MS} AS now
     FROM (SELECT id, head_seq, head_hash, head_at FROM conversations
           WHERE id = ANY($1::text[]) ORDER BY id COLLATE "C" FOR UPDATE) AS h`,
  ),

  /**
   * $1..$12 the entry columns as arrays (ENTRY_COLUMNS order), $13..$16 the new heads (id, seq,
   * hash, at). One statement, one round trip, whatever the batch size.
   */
  writeEntriesAndHeads: prepared(
    "parley_write_entries_and_heads",
    `WITH inserted AS (
       INSERT INTO entries (${ENTRY_COLUMNS.join(", ")})
       SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::integer[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[])
     )
     UPDATE conversations AS c SET head_seq = h.seq, head_hash = h.hash, head_at = h.at
     FROM UNNEST($13::text[], $14::bigint[], $15::bytea[], $16::bigint[]) AS h(id, seq, hash, at)
     WHERE c.id = h.id`,
  ),
} as const;
