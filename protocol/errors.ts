// The typed error every decoder in this package throws: callers catch one class and get a stable
// code to put in an error frame or close reason, never a raw exception from a parser.

import type { ErrorCode } from "./codes.ts";

/** A frame or message that does not follow the protocol; `code` is an {@link ErrorCode}. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
