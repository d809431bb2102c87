// Entry point of the store's worker thread: opens the database, then runs each request from the
// event loop thread synchronously, in arrival order, and posts back a reply. A failing operation
// becomes an error reply; only a failure to open the database ends the thread.

import { parentPort, workerData } from "node:worker_threads";
import { openSqliteLog, type SqliteLog } from "./sqlite-log.ts";
import { StoreError, type StoreErrorCode } from "../../sql/store-error.ts";
import { OP_NAMES, type OpRequest, type SerializedError, type SqliteWorkerData, type WorkerMessage } from "./worker-protocol.ts";

const port = parentPort;
if (!port) throw new Error("server/store/sqlite/worker.ts must run as a worker thread");

const data = workerData as SqliteWorkerData;
// Throws (and so ends the thread with an 'error' event) when the file cannot be opened or migrated.
const log: SqliteLog = openSqliteLog(data);

port.on("message", (request: OpRequest) => {
  const reply = run(request);
  try {
    // A packed result (appendPacked) is moved, not copied.
    port.postMessage(reply, reply.type === "reply" && reply.ok && reply.value instanceof ArrayBuffer ? [reply.value] : []);
  } catch (err) {
    // A result that cannot cross the thread boundary must fail its call, not the thread.
    port.postMessage({ type: "reply", id: request.id, ok: false, error: serializeError(err) } satisfies WorkerMessage);
  }
  if (request.op === "close") port.close();
});
port.postMessage({ type: "ready" } satisfies WorkerMessage);

function run({ id, op, args }: OpRequest): WorkerMessage {
  try {
    if (!OP_NAMES.has(op)) throw new StoreError("invalid_request", `unknown store operation ${JSON.stringify(op)}`);
    const fn = log[op] as (...a: unknown[]) => unknown;
    return { type: "reply", id, ok: true, value: fn.apply(log, args) };
  } catch (err) {
    return { type: "reply", id, ok: false, error: serializeError(err) };
  }
}

function serializeError(err: unknown): SerializedError {
  if (err instanceof StoreError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: sqliteErrorCode(err), message };
}

/** Maps SQLite result codes to what a caller can act on: wait and retry, fail over, or report. */
function sqliteErrorCode(err: unknown): StoreErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "internal";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "busy";
  if (/^SQLITE_(IOERR|FULL|CANTOPEN|READONLY|NOTADB|CORRUPT|PROTOCOL)/.test(code)) return "unavailable";
  return "internal";
}
