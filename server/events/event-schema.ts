// The partner events' tables, written once for SQLite (events.db) and Postgres (beside the log
// store and the directory, so no name may clash with theirs). Version 1 is the layout SQLite
// files had before the schema was versioned (CREATE ... IF NOT EXISTS adopts them unchanged).

import type { VersionedSchema } from "../sql/versioned-schema.ts";
import { autoKey } from "./partner-sql.ts";

export const EVENTS_SCHEMA: VersionedSchema = {
  name: "events",
  versionTable: "events_schema_version",
  migrations: [
    (d) => `
    CREATE TABLE IF NOT EXISTS events (
      seq ${autoKey(d)}, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, conversation_id TEXT NOT NULL,
      occurred_at ${d.int64} NOT NULL, recorded_at ${d.int64} NOT NULL, data TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS events_by_time ON events(recorded_at);
    CREATE TABLE IF NOT EXISTS streams (
      org_id TEXT PRIMARY KEY, head ${d.int64} NOT NULL, pruned_through ${d.int64} NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS stream_entries (
      org_id TEXT NOT NULL, cursor ${d.int64} NOT NULL, event_seq ${d.int64} NOT NULL, type TEXT NOT NULL,
      recorded_at ${d.int64} NOT NULL, PRIMARY KEY (org_id, cursor))${d.smallRowTable};
    CREATE INDEX IF NOT EXISTS stream_entries_by_time ON stream_entries(recorded_at);
    CREATE INDEX IF NOT EXISTS stream_entries_by_event ON stream_entries(event_seq);
    CREATE TABLE IF NOT EXISTS once_subjects (
      conversation_id TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (conversation_id, subject))${d.smallRowTable};
    CREATE TABLE IF NOT EXISTS derivation (
      conversation_id TEXT PRIMARY KEY, dirty_seq ${d.int64}, derived_seq ${d.int64} NOT NULL DEFAULT 0, notes_hash TEXT);
    `,
  ],
};
