// The app's HTTP client: the access token lives only in memory; the refresh token is an HttpOnly
// cookie the page cannot read, renewed through /v1/auth/refresh with the CSRF token echoed from
// its readable cookie. One refresh at a time (a refresh token works once; reuse ends the session,
// but for one retry soon after a rotation whose answer was lost).

import { ErrorCode } from "../index.ts";

/** An error answer from the API: HTTP status, Parley error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The server could not be reached (offline, restarting). */
export class NetworkError extends Error {}

interface AccessToken {
  token: string;
  expiresAt: number;
}

let access: AccessToken | null = null;
let refreshing: Promise<boolean> | null = null;
const signedOutListeners = new Set<() => void>();

// Renew this long before expiry, so a token handed out is still good when it arrives.
const EXPIRY_MARGIN_MS = 30_000;

/** Keeps an access token from a sign-in answer (never stored anywhere but here). */
export function setAccessToken(token: string, expiresInSeconds: number): void {
  access = { token, expiresAt: Date.now() + expiresInSeconds * 1000 };
}

/** Forgets the access token (signing out). */
export function clearAccessToken(): void {
  access = null;
}

/** Called when the session ended on the server (refresh refused). */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "parley_csrf") return rest.join("=");
  }
  return "";
}

async function send(method: string, path: string, body: unknown, headers: Record<string, string>, keepalive = false): Promise<Response> {
  try {
    return await fetch(path, {
      method,
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      keepalive,
    });
  } catch {
    throw new NetworkError("the server cannot be reached");
  }
}

async function parse<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const parsed = (await response.json().catch(() => null)) as (T & { error?: { code: number; message: string } }) | null;
  if (!response.ok || parsed === null) {
    const error = parsed?.error;
    const { code: _code, message: _message, ...details } = (error ?? {}) as Record<string, unknown>;
    throw new ApiError(response.status, error?.code ?? response.status, error?.message ?? `HTTP ${response.status}`, details);
  }
  return parsed;
}

/**
 * Runs `task` while holding the origin-wide refresh lock (Web Locks): two tabs share the cookie,
 * and two refreshes sending the same refresh token at once would look like reuse and end the
 * session. Under the lock, the later tab sends the cookie the earlier one already rotated.
 */
function underRefreshLock<T>(task: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? (locks.request("parley-refresh", task) as Promise<T>) : task();
}

/** Exchanges the refresh cookie for a new access token; false when there is no session (any more). */
export function refreshSession(): Promise<boolean> {
  refreshing ??= underRefreshLock(async () => {
    try {
      // keepalive: a reload or navigation must not cut the answer off after the server rotated the
      // token, or the browser would keep the spent cookie and its next refresh would end the session.
      const response = await send("POST", "/v1/auth/refresh", {}, { "x-parley-csrf": csrfToken() }, true);
      if (response.status === 401 || response.status === 403) {
        access = null;
        return false;
      }
      const pair = await parse<{ accessToken: string; expiresIn: number }>(response);
      setAccessToken(pair.accessToken, pair.expiresIn);
      return true;
    } finally {
      refreshing = null;
    }
  });
  return refreshing;
}

/** A current access token, refreshed through the cookie when needed. */
export async function accessToken(): Promise<string> {
  if (access && access.expiresAt - Date.now() > EXPIRY_MARGIN_MS) return access.token;
  if (!(await refreshSession())) {
    for (const listener of signedOutListeners) listener();
    throw new ApiError(401, ErrorCode.InvalidRefreshToken, "signed out");
  }
  return (access as AccessToken | null)?.token ?? "";
}

/** Calls the API without credentials (sign-up, sign-in). */
export async function publicApi<T>(method: string, path: string, body?: unknown): Promise<T> {
  return parse<T>(await send(method, path, body, {}));
}

/**
 * Calls the API as the signed-in person. When the access token itself was refused (expired, or
 * the server's clock ran ahead), one retry after a refresh; any other 401 (a wrong two-factor
 * code) is the answer, never sent twice.
 */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await send(method, path, body, { authorization: `Bearer ${await accessToken()}` });
  try {
    return await parse<T>(response);
  } catch (error) {
    if (!(error instanceof ApiError) || (error.code !== ErrorCode.InvalidToken && error.code !== ErrorCode.TokenExpired)) throw error;
    access = null;
    return parse<T>(await send(method, path, body, { authorization: `Bearer ${await accessToken()}` }));
  }
}

/** A message for people from any error. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message;
  return error instanceof Error ? error.message : String(error);
}
