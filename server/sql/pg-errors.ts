// Maps what node-postgres throws onto StoreError codes, so the write path can tell "retry later,
// never ack" (the server is down, the connection dropped) from a bad request or a bug. Postgres
// errors carry a SQLSTATE; pg's own client-side failures carry only an errno or a message.

import { StoreError, type StoreErrorCode } from "./store-error.ts";

/** Socket-level errnos: the server cannot be reached or the connection broke. */
const CONNECTION_ERRNOS: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/** pg's client-side failures that mean the connection is gone or was never made. */
const CONNECTION_MESSAGES =
  /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|timeout expired|Query read timeout/i;

/** SQLSTATEs after which the same transaction, run again, may well succeed. */
const TRANSIENT_SQLSTATES: ReadonlySet<string> = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

/** True when rerunning the whole transaction is safe and sensible (it was rolled back, nothing committed). */
export function isTransientConflict(err: unknown): boolean {
  return TRANSIENT_SQLSTATES.has(codeOf(err));
}

/** True when the connection can no longer be trusted and must not go back to the pool. */
export function isConnectionFailure(err: unknown): boolean {
  const code = codeOf(err);
  if (CONNECTION_ERRNOS.has(code)) return true;
  // 08: connection exception; 57P01-57P03: the server is shutting down or restarting.
  if (/^[0-9A-Z]{5}$/.test(code)) return code.startsWith("08") || code.startsWith("57P");
  return CONNECTION_MESSAGES.test(err instanceof Error ? err.message : String(err));
}

/** Wraps any failure of a Postgres call as a StoreError; `doing` says which call, for logs. */
export function toStoreError(err: unknown, doing: string): StoreError {
  if (err instanceof StoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = codeOf(err);
  return new StoreError(classify(err), `${doing}: ${message}${code ? ` (${code})` : ""}`);
}

function classify(err: unknown): StoreErrorCode {
  const code = codeOf(err);
  if (CONNECTION_ERRNOS.has(code)) return "unavailable";
  if (/^[0-9A-Z]{5}$/.test(code)) return sqlstateCode(code);
  const message = err instanceof Error ? err.message : String(err);
  return CONNECTION_MESSAGES.test(message) ? "unavailable" : "internal";
}

function sqlstateCode(sqlstate: string): StoreErrorCode {
  if (TRANSIENT_SQLSTATES.has(sqlstate) || sqlstate === "55P03") return "busy"; // 55P03: lock_not_available
  if (sqlstate === "25006") return "unavailable"; // read_only_sql_transaction: we reached a standby
  switch (sqlstate.slice(0, 2)) {
    case "08": // connection exception
    case "28": // invalid authorization (the server refuses us; an operator must act)
    case "3D": // the database does not exist
    case "53": // insufficient resources: disk full, out of memory, too many connections
    case "57": // operator intervention: shutdown, crash recovery, cancelled by timeout
    case "58": // system error: I/O
      return "unavailable";
    case "22": // data exception: a value Postgres cannot store
      return "invalid_request";
    default:
      return "internal";
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}
