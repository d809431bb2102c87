// Writing HTTP responses from uWS handlers: every response carries the security headers, JSON
// bodies have one shape, and errors use the same numeric codes as socket error frames.

import type { ErrorCode } from "../../protocol/index.ts";
import type { UWS } from "../platform/uws.ts";

/** Headers sent with every HTTP response (TLS itself is terminated at a proxy; see README). */
export const SECURITY_HEADERS: readonly [string, string][] = [
  ["Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
  ["Cache-Control", "no-store"],
];

/**
 * JSON for HTTP bodies: bytes (hashes, HMACs) become lowercase hex, never `{"0":100,…}` (what
 * JSON.stringify makes of a Uint8Array) or `{"type":"Buffer",…}`.
 */
export function toJson(body: unknown): string {
  return JSON.stringify(body, function bytesAsHex(this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex") : value;
  });
}

/** Sends a JSON response (corked: one syscall). */
export function sendJson(res: UWS.HttpResponse, status: string, body: unknown): void {
  res.cork(() => {
    res.writeStatus(status);
    for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
    res.writeHeader("Content-Type", "application/json; charset=utf-8");
    res.end(toJson(body));
  });
}

/** Sends an error body `{ error: { code, message } }`. */
export function sendError(res: UWS.HttpResponse, status: string, code: ErrorCode, message: string): void {
  sendJson(res, status, { error: { code, message } });
}
