// The server's typed error: a stable code from protocol/codes.ts plus a message that is safe to
// show a client. Anything else that escapes a handler is reported as Internal, without details.

import { ErrorCode, ProtocolError } from "../../protocol/index.ts";

/** An error whose code and message may be sent to the client as-is. */
export class ParleyError extends Error {
  override readonly name = "ParleyError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The code and client-safe message for any thrown value. */
export function describeError(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof ParleyError || error instanceof ProtocolError) {
    return { code: error.code, message: error.message };
  }
  return { code: ErrorCode.Internal, message: "internal error" };
}

/** Refused for now (too many attempts): the client may try again after `retryAfterSeconds` (HTTP: Retry-After). */
export class RateLimitedError extends ParleyError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(ErrorCode.RateLimited, message);
  }
}
