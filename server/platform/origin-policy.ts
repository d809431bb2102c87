// The one browser-origin policy, shared by CORS on HTTP responses, the CORS preflight and the
// Origin check of socket upgrades: PARLEY_ALLOWED_ORIGINS lists the origins; empty means any.
// Credentials are bearer tokens (never cookies), so allowing any origin leaks nothing by default.

/** True when `origin` (the request's Origin header, "" if absent) may call or connect. */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0 || origin === "") return true;
  return allowed.includes(origin);
}

/** The error message for a refused origin: names the origin and the setting that decides. */
export function originRefusal(origin: string): string {
  return `origin ${origin.slice(0, 200)} is not allowed: PARLEY_ALLOWED_ORIGINS lists the browser origins that may use this server`;
}

/** Response headers that let an allowed page read the response (none without an Origin). */
export function corsResponseHeaders(origin: string, allowed: readonly string[]): [string, string][] {
  if (origin === "" || !originAllowed(origin, allowed)) return [];
  return [
    ["Access-Control-Allow-Origin", origin],
    ["Vary", "Origin"],
    ["Access-Control-Expose-Headers", "X-Request-Id, Retry-After"],
  ];
}

/** Headers answering a CORS preflight from an allowed origin. */
export function corsPreflightHeaders(origin: string): [string, string][] {
  return [
    ["Access-Control-Allow-Origin", origin],
    ["Vary", "Origin"],
    ["Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE"],
    ["Access-Control-Allow-Headers", "authorization, content-type, last-event-id"],
    ["Access-Control-Max-Age", "600"],
  ];
}
