// The webhooks' tables, written once for SQLite (webhooks.db) and Postgres (beside the log store,
// the directory and the events). Version 1 is the layout SQLite files had before the schema was
// versioned (CREATE ... IF NOT EXISTS adopts them unchanged).

import { autoKey } from "../events/partner-sql.ts";
import type { VersionedSchema } from "../sql/versioned-schema.ts";

export const WEBHOOKS_SCHEMA: VersionedSchema = {
  name: "webhooks",
  versionTable: "webhooks_schema_version",
  migrations: [
    (d) => `
    CREATE TABLE IF NOT EXISTS endpoints (
      id TEXT PRIMARY KEY, org_id TEXT NOT NULL, url TEXT NOT NULL, description TEXT, event_types TEXT NOT NULL,
      secret_sealed ${d.bytes} NOT NULL, status TEXT NOT NULL, created_at ${d.int64} NOT NULL, created_by TEXT NOT NULL,
      disabled_at ${d.int64}, disabled_reason TEXT,
      cursor ${d.int64} NOT NULL, head_key TEXT, attempts INTEGER NOT NULL DEFAULT 0, first_failure_at ${d.int64},
      next_attempt_at ${d.int64}, failing_since ${d.int64}, last_success_at ${d.int64}, last_error TEXT);
    CREATE INDEX IF NOT EXISTS endpoints_by_org ON endpoints(org_id);
    CREATE TABLE IF NOT EXISTS attempts (
      id ${autoKey(d)}, endpoint_id TEXT NOT NULL, at ${d.int64} NOT NULL, event_id TEXT NOT NULL, cursor ${d.int64} NOT NULL,
      attempt INTEGER NOT NULL, ok ${d.boolean} NOT NULL, status INTEGER, error TEXT, duration_ms INTEGER NOT NULL, excerpt TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS attempts_by_endpoint ON attempts(endpoint_id, id);
    CREATE TABLE IF NOT EXISTS dead_letters (
      id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, cursor ${d.int64} NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
      event_json TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at ${d.int64} NOT NULL, last_error TEXT,
      replay_requested_at ${d.int64}, replayed_at ${d.int64});
    CREATE INDEX IF NOT EXISTS dead_letters_by_endpoint ON dead_letters(endpoint_id, cursor);
    `,
    // Events whose copies were removed (a side deleted: org_id; destroyed: '*'), kept for an hour:
    // a delivery in flight at that moment records its attempt afterwards and must not bring a
    // copy back. Only the opaque event id, never content.
    (d) => `
    CREATE TABLE IF NOT EXISTS forgotten_events (
      event_id TEXT NOT NULL, org_id TEXT NOT NULL, forgotten_at ${d.int64} NOT NULL, PRIMARY KEY (event_id, org_id));
    CREATE INDEX IF NOT EXISTS forgotten_events_by_time ON forgotten_events(forgotten_at);
    `,
  ],
};
