// The statements both backends run, written once with `?` placeholders (Postgres numbers them,
// see sql-dialect.ts). Aliases are quoted so rows come back as LogEntry fields in either engine.
// A backend adds only what its dialect does differently (row locks, multi-row writes).

import type { ConversationHead, PlannedEntry } from "./append-plan.ts";

/** Row shape of HEAD.select. */
export interface HeadRow {
  head_seq: number;
  head_hash: Uint8Array;
  head_at: number;
}

/** Row shape of SNAPSHOT.selectLatest. */
export interface SnapshotRow {
  seq: number;
  covers: number;
  state: Uint8Array;
}

/** Row shape of HEAD.lastActivityOf. */
export interface LastActivityRow {
  id: string;
  head_at: number;
}

export const HEAD = {
  select: "SELECT head_seq, head_hash, head_at FROM conversations WHERE id = ?",
  /** Heads whose last entry is at or after a time (audit checkpoints). */
  listChangedSince: 'SELECT id AS "conversation", head_seq AS "seq", head_hash AS "hash" FROM conversations WHERE head_at >= ? ORDER BY id',
  /** Row shape {@link LastActivityRow}; the id list is dialect-specific (json_each in SQLite, ANY in Postgres). */
  lastActivityOf: (idList: string) => `SELECT id, head_at FROM conversations WHERE head_seq > 0 AND id IN (${idList})`,
  /** id, created_at, head_seq, head_hash, head_at. created_at is kept for a known conversation. */
  upsert: `INSERT INTO conversations (id, created_at, head_seq, head_hash, head_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET head_seq = excluded.head_seq, head_hash = excluded.head_hash, head_at = excluded.head_at`,
} as const;

/** Columns of `entries` in the order {@link entryValues} lists a row's values. */
export const ENTRY_COLUMNS = [
  "conversation_id",
  "seq",
  "at",
  "user_id",
  "org_id",
  "session_id",
  "kind",
  "size",
  "content_hmac",
  "prev_hash",
  "hash",
  "payload",
] as const;

const ENTRY_ROW = `(${ENTRY_COLUMNS.map(() => "?").join(", ")})`;

export const ENTRY = {
  insert: `INSERT INTO entries (${ENTRY_COLUMNS.join(", ")}) VALUES ${ENTRY_ROW}`,
  /** `rows` rows at once, their values one after the other (setEntryValues). */
  insertRows: (rows: number) => `INSERT INTO entries (${ENTRY_COLUMNS.join(", ")}) VALUES ${Array(rows).fill(ENTRY_ROW).join(", ")}`,
  /** Update payloads (ciphertext) after a seq with their seqs (the associated data needs them): catching up, rebuilding. */
  selectUpdatesAfter: "SELECT seq, payload FROM entries WHERE conversation_id = ? AND seq > ? AND kind = 'update' ORDER BY seq",
  /** Entries with their payloads (a snapshot entry's payload is its state), a page at a time. */
  selectPage: `SELECT e.conversation_id AS "conversation", e.seq AS "seq", e.at AS "at", e.user_id AS "user",
      e.org_id AS "org", e.session_id AS "session", e.kind AS "kind", e.size AS "size",
      e.content_hmac AS "contentHmac", e.prev_hash AS "prevHash", e.hash AS "hash",
      CASE WHEN e.kind = 'snapshot' THEN s.state ELSE e.payload END AS "payload"
    FROM entries e
    LEFT JOIN snapshots s ON s.conversation_id = e.conversation_id AND s.seq = e.seq
    WHERE e.conversation_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`,
} as const;

export const SNAPSHOT = {
  /** conversation_id, seq (of its log entry), covers, state. */
  insert: "INSERT INTO snapshots (conversation_id, seq, covers, state) VALUES (?, ?, ?, ?)",
  selectLatest: "SELECT seq, covers, state FROM snapshots WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1",
} as const;

/** Destruction: rows go, the id stays as a tombstone so later appends are refused. */
/** Owners of Yjs client ids (see ./client-claims.ts). */
export const CLIENT_ID = {
  /** conversation_id, client_id. */
  select: "SELECT user_id, org_id FROM client_ids WHERE conversation_id = ? AND client_id = ?",
  /** conversation_id, client_id, user_id, org_id, session_id. */
  insert:
    "INSERT INTO client_ids (conversation_id, client_id, user_id, org_id, session_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, client_id) DO NOTHING",
  /** conversation_id. Every owner recorded for the conversation. */
  selectAll: "SELECT client_id, user_id, org_id, session_id FROM client_ids WHERE conversation_id = ?",
} as const;

export const DESTROY = {
  deleteClientIds: "DELETE FROM client_ids WHERE conversation_id = ?",
  deleteEntries: "DELETE FROM entries WHERE conversation_id = ?",
  deleteSnapshots: "DELETE FROM snapshots WHERE conversation_id = ?",
  deleteHead: "DELETE FROM conversations WHERE id = ?",
  /** id, destroyed_at. Keeps the first destruction's time. */
  insertTombstone: "INSERT INTO destroyed_conversations (id, destroyed_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
  selectTombstone: "SELECT id FROM destroyed_conversations WHERE id = ?",
} as const;

/** A row's values in {@link ENTRY_COLUMNS} order. */
export type EntryValues = [
  conversation: string,
  seq: number,
  at: number,
  user: string,
  org: string,
  session: string,
  kind: string,
  size: number,
  contentHmac: Uint8Array,
  prevHash: Uint8Array,
  hash: Uint8Array,
  payload: Uint8Array | null,
];

/** A planned entry's values in {@link ENTRY_COLUMNS} order. */
export function entryValues(e: PlannedEntry): EntryValues {
  return [
    e.conversation,
    e.seq,
    e.at,
    e.user,
    e.org,
    e.session,
    e.kind,
    e.size,
    e.contentHmac,
    e.prevHash,
    e.hash,
    e.payload,
  ];
}

/** Writes a planned entry's values into `args` from `at` on, in {@link ENTRY_COLUMNS} order (no array per row). */
export function setEntryValues(args: unknown[], at: number, e: PlannedEntry): void {
  args[at] = e.conversation;
  args[at + 1] = e.seq;
  args[at + 2] = e.at;
  args[at + 3] = e.user;
  args[at + 4] = e.org;
  args[at + 5] = e.session;
  args[at + 6] = e.kind;
  args[at + 7] = e.size;
  args[at + 8] = e.contentHmac;
  args[at + 9] = e.prevHash;
  args[at + 10] = e.hash;
  args[at + 11] = e.payload;
}

export function headFromRow(row: HeadRow): ConversationHead {
  return { seq: row.head_seq, hash: row.head_hash, at: row.head_at };
}
