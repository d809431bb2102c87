// The embedded audit log's worker thread: its own connection to the directory's SQLite file
// (WAL, so it reads beside the directory's worker and takes turns with it on writes), the audit
// schema migrated, and each operation run one after another.

import Database from "better-sqlite3";
import { SqliteRunner } from "../../sql/sqlite-runner.ts";
import { migrate } from "../../sql/sqlite-migrate.ts";
import { serialService } from "../../sql/serial-service.ts";
import type { SyncService } from "../../sql/worker-service.ts";
import { AUDIT_LOG_OPERATIONS, type AuditLog } from "../audit-log.ts";
import { AUDIT_SCHEMA } from "../audit-schema.ts";
import { SqlAuditLog } from "../sql-audit-log.ts";

/** What the worker serves: every audit log operation, plus close. */
export type AuditWorker = SyncService & AuditLog;

/** Entry point for the worker thread (server/sql/worker-entry.mjs). */
export function openService(options: { path: string }): AuditWorker {
  const db = new Database(options.path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  migrate(db, AUDIT_SCHEMA);
  const log = new SqlAuditLog(new SqliteRunner(db));
  return serialService([{ prefix: "", target: log, operations: AUDIT_LOG_OPERATIONS }], () => db.close()) as unknown as AuditWorker;
}
