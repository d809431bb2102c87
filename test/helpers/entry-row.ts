// A row of the store's `entries` table as better-sqlite3 returns it, for tests that read or
// tamper with the database file directly.

import type { EntryKind } from "../../server/store/store.ts";

export interface EntryRow {
  conversation_id: string;
  seq: number;
  at: number;
  user_id: string;
  org_id: string;
  session_id: string;
  kind: EntryKind;
  size: number;
  content_hmac: Buffer;
  prev_hash: Buffer;
  hash: Buffer;
  payload: Buffer | null;
}
