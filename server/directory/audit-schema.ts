// The audit tables that live with the directory (so they are in Postgres when several nodes run):
// organisation audit chains, their heads, and the signed checkpoints. A schema of its own, with
// its own version table, so it migrates independently of the directory's tables.

import type { VersionedSchema } from "../sql/versioned-schema.ts";

export const AUDIT_SCHEMA: VersionedSchema = {
  name: "audit",
  versionTable: "audit_schema_version",
  migrations: [
    (d) => `
    -- One row per organisation: the head its next entry links to. Locked while appending, so
    -- concurrent writers on several nodes take turns and sequence numbers never repeat or skip.
    CREATE TABLE IF NOT EXISTS org_audit_heads (
      org_id     TEXT PRIMARY KEY,
      head_seq   ${d.int64} NOT NULL,
      head_hash  ${d.bytes} NOT NULL,
      head_at    ${d.int64} NOT NULL
    );
    -- No foreign key to organisations: the chain must outlive an organisation's deletion.
    CREATE TABLE IF NOT EXISTS org_audit_entries (
      org_id    TEXT NOT NULL,
      seq       ${d.int64} NOT NULL,
      at        ${d.int64} NOT NULL,
      action    TEXT NOT NULL,
      actor     TEXT NOT NULL,
      target    TEXT NOT NULL,
      details   TEXT NOT NULL,
      prev_hash ${d.bytes} NOT NULL,
      hash      ${d.bytes} NOT NULL,
      PRIMARY KEY (org_id, seq)
    );
    CREATE INDEX IF NOT EXISTS org_audit_heads_by_time ON org_audit_heads(head_at);
    -- The last checkpoint, locked while the next is inserted: of nodes racing to checkpoint, one
    -- wins and each checkpoint links to the one stored before it (no fork).
    CREATE TABLE IF NOT EXISTS audit_checkpoint_head (
      id          INTEGER PRIMARY KEY,
      interval_no ${d.int64} NOT NULL
    );
    -- One signed checkpoint per interval; the primary key makes exactly one node's insert win.
    CREATE TABLE IF NOT EXISTS audit_checkpoints (
      interval_no ${d.int64} PRIMARY KEY,
      body        TEXT NOT NULL,
      hash        ${d.bytes} NOT NULL,
      signature   ${d.bytes} NOT NULL
    );
    `,
  ],
};
