// The audit log seam: organisation audit chains and signed checkpoints, kept with the directory
// (the same SQLite file, or the same Postgres database when several nodes run). Its own worker
// or pool beside the directory's, so audit writes never queue behind directory calls and the two
// schemas migrate independently. openAuditLog() picks the backend the same way as openDirectory().

import path from "node:path";
import { DIRECTORY_FILE } from "./open-directory.ts";
import { PgRunner } from "../sql/pg-runner.ts";
import { migrate } from "../sql/pg-migrate.ts";
import { StorePool } from "../sql/pg-pool.ts";
import { type SyncService, WorkerService, type WorkerThread } from "../sql/worker-service.ts";
import { AUDIT_SCHEMA } from "./audit-schema.ts";
import type { OrgAuditEntry, OrgAuditEvent } from "./org-chain.ts";
import { type ChainHeadRecord, SqlAuditLog, type StoredCheckpoint } from "./sql-audit-log.ts";
import { moduleBeside } from "../sql/module-url.ts";

/** Every audit log operation, asynchronous, the same on both backends. */
export interface AuditLog {
  /** Appends an event to the organisation's chain with its next seq (atomic under concurrent writers on any node). */
  appendOrgAuditEvent(org: string, event: OrgAuditEvent, now: number): Promise<OrgAuditEntry>;
  /** Entries with seq > afterSeq, at most `limit`, in order. */
  readOrgAuditEntries(org: string, afterSeq: number, limit: number): Promise<OrgAuditEntry[]>;
  /** The organisation's chain head, or null before its first event. */
  orgAuditHead(org: string): Promise<ChainHeadRecord | null>;
  /** Org chain heads whose last entry is at or after `sinceMs`. */
  listOrgAuditHeads(sinceMs: number): Promise<ChainHeadRecord[]>;
  /** Stores a checkpoint if the last stored is still `previousInterval` (null: none); true when this call stored it. */
  insertAuditCheckpoint(checkpoint: StoredCheckpoint, previousInterval: number | null): Promise<boolean>;
  /** Checkpoints with interval > afterInterval, at most `limit`, in order. */
  listAuditCheckpoints(afterInterval: number, limit: number): Promise<StoredCheckpoint[]>;
  lastAuditCheckpoint(): Promise<StoredCheckpoint | null>;
}

/** The operations by name (what the SQLite worker serves). */
export const AUDIT_LOG_OPERATIONS = [
  "appendOrgAuditEvent",
  "readOrgAuditEntries",
  "orgAuditHead",
  "listOrgAuditHeads",
  "insertAuditCheckpoint",
  "listAuditCheckpoints",
  "lastAuditCheckpoint",
] as const satisfies readonly (keyof AuditLog)[];

/** An open audit log and how to close it. */
export interface AuditLogHandle {
  log: AuditLog;
  /** The worker threads it runs on (SQLite: one; Postgres: none), for /healthz. */
  workers: readonly WorkerThread[];
  close(): Promise<void>;
}

export interface AuditLogOptions {
  dataDir: string;
  databaseUrl?: string | null;
  /** Postgres only: schema to work in (tests isolate themselves this way). */
  schema?: string;
}

/** Opens (creating and migrating when needed) the audit log beside the directory. */
export async function openAuditLog(options: AuditLogOptions): Promise<AuditLogHandle> {
  if (options.databaseUrl) {
    const pool = new StorePool({
      connectionString: options.databaseUrl,
      schema: options.schema,
      poolSize: 3,
      connectTimeoutMs: 5000,
      queryTimeoutMs: 30_000,
    });
    try {
      await migrate(pool, options.schema, AUDIT_SCHEMA);
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return { log: new SqlAuditLog(new PgRunner(pool)), workers: [], close: () => pool.end() };
  }
  const file = path.join(options.dataDir, DIRECTORY_FILE);
  const service = await WorkerService.start<SyncService & AuditLog>(moduleBeside(import.meta.url, "./sqlite/audit-worker"), { path: file }, { name: "audit log worker" });
  return { log: service.api as unknown as AuditLog, workers: [service], close: () => service.close() };
}
