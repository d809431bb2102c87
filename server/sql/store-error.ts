// The typed error every store call rejects with, whatever the backend: callers switch on a stable
// `code` (and map it to the protocol's StoreUnavailable / Internal codes) instead of parsing
// SQLite or Postgres messages. Each backend maps its driver's failures onto these codes.

/** Why a store call failed. */
export type StoreErrorCode =
  /** The store was closed; no call after close() runs. */
  | "closed"
  /** The store cannot commit (worker gone, disk or I/O failure, database down or unreachable); safe to retry later. */
  | "unavailable"
  /** Another writer held the data longer than the backend waits (lock or busy timeout). Safe to retry. */
  | "busy"
  /** The request itself is malformed (bad conversation id, kind, payload or bounds). */
  | "invalid_request"
  /** Stored data fails authentication: tampered, moved to another row, or its key is gone (never returned as garbage). */
  | "undecryptable"
  /** Anything else (a bug, or stored data that cannot be decoded). */
  | "internal";

/** A failed store call; `code` is stable, `message` is for logs only (never for clients). */
export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const CODES: ReadonlySet<string> = new Set<StoreErrorCode>(["closed", "unavailable", "busy", "invalid_request", "undecryptable", "internal"]);

/** Narrows an untrusted code (e.g. one that crossed a thread boundary) to a known one. */
export function toStoreErrorCode(code: unknown): StoreErrorCode {
  return typeof code === "string" && CODES.has(code) ? (code as StoreErrorCode) : "internal";
}

/** Appending to a destroyed conversation: refused, the same way by every backend. */
export function destroyedError(conversation: string): StoreError {
  return new StoreError("invalid_request", `conversation ${JSON.stringify(conversation)} was destroyed; it cannot be written again`);
}
