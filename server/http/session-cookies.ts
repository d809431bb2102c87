// The browser session: the refresh token in an HttpOnly, SameSite=Strict cookie (Secure when the
// public URL is https) that only the refresh route reads, and a CSRF token for the routes that the
// cookie authenticates (double submit: a readable cookie the page echoes in a header, which
// another site can neither read nor set; plus an Origin check when the browser sends one).

import { randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";

/** The refresh token's cookie (sent only to /v1/auth). */
export const REFRESH_COOKIE = "parley_refresh";
/** The CSRF token's cookie (readable by the app's script). */
export const CSRF_COOKIE = "parley_csrf";
/** The header the app echoes the CSRF token in. */
export const CSRF_HEADER = "x-parley-csrf";

/** A cookie's value in a Cookie header, or undefined. */
export function cookieValue(cookies: string, name: string): string | undefined {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

function secureFlag(publicUrl: string): string {
  return publicUrl.startsWith("https:") ? "; Secure" : "";
}

/** Set-Cookie headers that hand a browser its refresh token and a fresh CSRF token. */
export function sessionCookies(refreshToken: string, maxAgeSeconds: number, publicUrl: string): [string, string][] {
  const secure = secureFlag(publicUrl);
  const csrf = randomBytes(24).toString("base64url");
  return [
    ["Set-Cookie", `${REFRESH_COOKIE}=${refreshToken}; Path=/v1/auth; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`],
    ["Set-Cookie", `${CSRF_COOKIE}=${csrf}; Path=/; Max-Age=${maxAgeSeconds}; SameSite=Strict${secure}`],
  ];
}

/** Set-Cookie headers that end the browser session. */
export function clearedSessionCookies(publicUrl: string): [string, string][] {
  const secure = secureFlag(publicUrl);
  return [
    ["Set-Cookie", `${REFRESH_COOKIE}=; Path=/v1/auth; Max-Age=0; HttpOnly; SameSite=Strict${secure}`],
    ["Set-Cookie", `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict${secure}`],
  ];
}

function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function sameSite(origin: string, hosts: string[]): boolean {
  try {
    return hosts.includes(new URL(origin).host);
  } catch {
    return false; // "null" (sandboxed or opaque origins) and anything unparsable
  }
}

/** What a cookie-authenticated request brings to prove it comes from the app's own page. */
export interface CookieRequest {
  cookie: string;
  csrfToken: string;
  origin: string;
  host: string;
}

/**
 * The refresh token a cookie-authenticated request carries, once its CSRF token matches its CSRF
 * cookie and its Origin (when sent) is this host or the public URL's; a clear error otherwise.
 */
export function refreshTokenFromCookie(request: CookieRequest, publicUrl: string): string {
  const refreshToken = cookieValue(request.cookie, REFRESH_COOKIE);
  if (!refreshToken) throw new ParleyError(ErrorCode.InvalidRefreshToken, "no refresh token: sign in");
  const expected = cookieValue(request.cookie, CSRF_COOKIE);
  if (!expected || !request.csrfToken || !sameToken(expected, request.csrfToken)) {
    throw new ParleyError(ErrorCode.Forbidden, `a cookie-authenticated request needs the ${CSRF_HEADER} header matching its CSRF cookie`);
  }
  // Behind a proxy the Host header may be rewritten: the public URL's host counts as this site too.
  if (request.origin !== "" && !sameSite(request.origin, [request.host, new URL(publicUrl).host])) {
    throw new ParleyError(ErrorCode.Forbidden, "a cookie-authenticated request must come from this site");
  }
  return refreshToken;
}
