// The store's worker-thread service (run by server/sql/worker-entry.mjs for sqlite-store.ts):
// opens the database, then runs each operation synchronously, in arrival order. Every failure
// leaves as a StoreError, SQLite's own result codes mapped to what a caller can act on; only a
// failure to open the database ends the thread.

import type { SyncService } from "../../sql/worker-service.ts";
import { StoreError, type StoreErrorCode } from "../../sql/store-error.ts";
import { openSqliteLog, type SqliteLog, type SqliteLogOptions } from "./sqlite-log.ts";

/** The operations the event loop may call. */
const OPERATIONS = [
  "appendBatch",
  "appendPacked",
  "loadDocument",
  "readUpdatesSince",
  "readEntries",
  "listChainHeads",
  "listClientIds",
  "lastActivity",
  "compact",
  "destroyConversation",
  "ping",
  "close",
] as const satisfies readonly (keyof SqliteLog)[];

/** What the worker serves: those operations of SqliteLog. */
export type StoreWorker = SyncService & Pick<SqliteLog, (typeof OPERATIONS)[number]>;

/** Entry point for the worker thread. Throws (ending the thread) when the file cannot be opened or migrated. */
export function openService(options: SqliteLogOptions): StoreWorker {
  const log = openSqliteLog(options);
  const service: Record<string, unknown> = { operations: OPERATIONS };
  for (const op of OPERATIONS) {
    const method = log[op] as (...args: unknown[]) => unknown;
    service[op] = (...args: unknown[]) => {
      try {
        return method.apply(log, args);
      } catch (error) {
        throw asStoreError(error);
      }
    };
  }
  return service as unknown as StoreWorker;
}

function asStoreError(error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError(sqliteErrorCode(error), error instanceof Error ? error.message : String(error));
}

/** Maps SQLite result codes to what a caller can act on: wait and retry, fail over, or report. */
function sqliteErrorCode(error: unknown): StoreErrorCode {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "internal";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "busy";
  if (/^SQLITE_(IOERR|FULL|CANTOPEN|READONLY|NOTADB|CORRUPT|PROTOCOL)/.test(code)) return "unavailable";
  return "internal";
}
