// One safe way to decode the parts of a URL a client sends (path segments, query values).
// decodeURIComponent throws URIError on malformed percent-encoding; in a uWS handler that
// escapes as an uncaught exception and stops the process. Every decode goes through here and
// turns that into a client error.

import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "./errors.ts";

/** Decodes one percent-encoded URL component, or throws InvalidRequest naming `what`. */
export function decodeUrlComponent(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ParleyError(ErrorCode.InvalidRequest, `${what} has malformed percent-encoding`);
  }
}

/** Parses a query string (`a=1&b=2`, `+` as space) strictly: malformed encoding is refused, not replaced. */
export function parseQueryString(query: string): Map<string, string> {
  const result = new Map<string, string>();
  if (query === "") return result;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const rawKey = equals === -1 ? part : part.slice(0, equals);
    const rawValue = equals === -1 ? "" : part.slice(equals + 1);
    const key = decodeUrlComponent(rawKey.replaceAll("+", " "), "a query parameter name");
    // First occurrence wins, as URLSearchParams.get() does: a repeated parameter cannot override.
    if (!result.has(key)) result.set(key, decodeUrlComponent(rawValue.replaceAll("+", " "), `query parameter "${key}"`));
  }
  return result;
}
