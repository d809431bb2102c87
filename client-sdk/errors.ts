// The one error class the SDK rejects promises with. `code` is a protocol ErrorCode (e.g. 3001
// Forbidden) for request failures, or a WebSocket close code (e.g. 4401) when the connection ended.

/** An error reported by the SDK; `code` is a protocol error code or a close code. */
export class ParleyError extends Error {
  override readonly name = "ParleyError";
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** A plain description of an error, as carried by status and "error" events. */
export interface ParleyErrorInfo {
  /** Protocol error code (e.g. 3001) or WebSocket close code (e.g. 4401). */
  code: number;
  /** Human-readable explanation (from the server when it gave one). */
  message: string;
}

/** Wraps an error description in a {@link ParleyError}. */
export function toParleyError(info: ParleyErrorInfo): ParleyError {
  return new ParleyError(info.code, info.message);
}
