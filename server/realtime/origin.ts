// Browser Origin check for WebSocket upgrades: with an allowlist configured, a page from any
// other origin cannot open a socket even if it holds a token. Non-browser clients send no Origin.

/** True when `origin` (the request's Origin header, "" if absent) may connect. */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0 || origin === "") return true;
  return allowed.includes(origin);
}
