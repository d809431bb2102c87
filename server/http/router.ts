// Registers declared routes on uWS and runs each request through the same steps: Origin check,
// bounded body read, schema validation, credential resolution, the handler, and one response
// shape for errors. uWS requests are only valid synchronously, so everything needed is read
// from them before the first await.

import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { DirectoryError } from "../directory/directory.ts";
import { describeError, ParleyError } from "../platform/errors.ts";
import type { Logger } from "../platform/logger.ts";
import { clientAddress, forwardedForOf, type ProxyTrust } from "../platform/client-address.ts";
import { corsPreflightHeaders, corsResponseHeaders, originAllowed, originRefusal } from "../platform/origin-policy.ts";
import { assertWithinLimits } from "../platform/bounded-content.ts";
import { decodeUrlComponent, parseQueryString } from "../platform/url-decoding.ts";
import type { RequestLimits } from "../limits/request-limits.ts";
import type { UWS } from "../platform/uws.ts";
import { WorkerCallError } from "../sql/worker-service.ts";
import { actorId, type Principal, type PrincipalDeps, resolvePrincipal } from "./principal.ts";
import { SECURITY_HEADERS, toJson } from "./respond.ts";
import type { RequestHeaders, RouteDefinition, RouteResult } from "./route.ts";
import { CSRF_HEADER } from "./session-cookies.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Router settings, from configuration. */
export interface RouterOptions {
  allowedOrigins: readonly string[];
  maxBodyBytes: number;
  /** Which proxies may name the client in X-Forwarded-For (see platform/client-address.ts). */
  proxyTrust: ProxyTrust;
  logger: Logger;
  principals: PrincipalDeps;
  /** Told every response's route, status and error code (metrics). */
  onResponse?: (route: RouteDefinition, status: number, code: number | undefined) => void;
  /** Request rate limits per address, account, API key and organisation; none when absent. */
  requestLimits?: RequestLimits;
}

const STATUS_TEXT: Record<number, string> = {
  200: "200 OK",
  201: "201 Created",
  204: "204 No Content",
  303: "303 See Other",
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  409: "409 Conflict",
  410: "410 Gone",
  413: "413 Payload Too Large",
  415: "415 Unsupported Media Type",
  422: "422 Unprocessable Entity",
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  503: "503 Service Unavailable",
};

/** The HTTP status for an error code. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.InvalidRequest:
    case ErrorCode.MalformedFrame:
      return 400;
    case ErrorCode.InvalidCredentials:
    case ErrorCode.InvalidToken:
    case ErrorCode.TokenExpired:
    case ErrorCode.TwoFactorRequired:
    case ErrorCode.InvalidTwoFactorCode:
    case ErrorCode.InvalidRefreshToken:
    case ErrorCode.DeviceCodeRequired:
      return 401;
    case ErrorCode.Forbidden:
    case ErrorCode.ReadOnly:
    case ErrorCode.IpNotAllowed:
    case ErrorCode.OriginNotAllowed:
    case ErrorCode.InsufficientRole:
    case ErrorCode.TwoFactorEnrolmentRequired:
      return 403;
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.Conflict:
      return 409;
    case ErrorCode.InvitationInvalid:
    case ErrorCode.SignupLinkInvalid:
    case ErrorCode.EventCursorExpired:
      return 410;
    case ErrorCode.FrameTooLarge:
    case ErrorCode.UpdateTooLarge:
      return 413;
    case ErrorCode.WeakPassword:
    case ErrorCode.InvalidUpdate:
    case ErrorCode.InvalidMessage:
    case ErrorCode.ClientIdTaken:
    case ErrorCode.DocumentLimit:
    case ErrorCode.UnmergeableUpdate:
      return 422;
    case ErrorCode.RateLimited:
      return 429;
    case ErrorCode.StoreUnavailable:
    case ErrorCode.ShuttingDown:
      return 503;
    default:
      return 500;
  }
}

/** A ParleyError that also carries extra response fields (e.g. password problems, Retry-After). */
export class HttpError extends ParleyError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message);
  }
}

function errorResult(error: unknown): RouteResult {
  // A stack overflow while handling one request comes from content nested too deep (Yjs walks
  // shared types by recursion): that request's error, with the code that says so.
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return errorResult(new ParleyError(ErrorCode.ContentTooComplex, "the stored content is nested deeper than this server can process; nothing was changed"));
  }
  if (error instanceof z.ZodError) {
    const issue = error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return { status: 400, body: { error: { code: ErrorCode.InvalidRequest, message: `${where}${issue?.message ?? "invalid request"}` } } };
  }
  if (error instanceof DirectoryError) {
    if (error.code === "conflict") return { status: 409, body: { error: { code: ErrorCode.Conflict, message: error.message } } };
    if (error.code === "not_found") return { status: 404, body: { error: { code: ErrorCode.NotFound, message: error.message } } };
    if (error.code === "invalid") return { status: 400, body: { error: { code: ErrorCode.InvalidRequest, message: error.message } } };
    return { status: 503, body: { error: { code: ErrorCode.StoreUnavailable, message: "the directory is unavailable; try again" } }, headers: [["Retry-After", "1"]] };
  }
  if (error instanceof WorkerCallError) {
    if (error.code === "conflict") return { status: 409, body: { error: { code: ErrorCode.Conflict, message: error.message } } };
    if (error.code === "not_found") return { status: 404, body: { error: { code: ErrorCode.NotFound, message: error.message } } };
    if (error.code === "invalid") return { status: 400, body: { error: { code: ErrorCode.InvalidRequest, message: error.message } } };
  }
  const { code, message } = describeError(error);
  const details = error instanceof HttpError ? error.details : {};
  const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  const headers: [string, string][] = typeof retryAfter === "number" ? [["Retry-After", String(Math.max(1, Math.ceil(retryAfter)))]] : [];
  return { status: statusFor(code), body: { error: { code, message, ...details } }, headers };
}

function paramNames(path: string): string[] {
  return path
    .split("/")
    .filter((part) => part.startsWith(":"))
    .map((part) => part.slice(1));
}

function parseQuery(query: string): Record<string, string> {
  return Object.fromEntries(parseQueryString(query));
}

function readBody(res: UWS.HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size > limit) {
        reject(new ParleyError(ErrorCode.FrameTooLarge, `request body exceeds ${limit} bytes`));
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

/** Registers routes (and CORS preflight) on the app. */
export function registerRoutes(app: UWS.TemplatedApp, routes: readonly RouteDefinition[], options: RouterOptions): void {
  const { logger } = options;
  const originOk = (origin: string) => originAllowed(origin, options.allowedOrigins);

  // A preflight is answered by the same policy as the request it announces.
  app.options("/*", (res, req) => {
    const origin = req.getHeader("origin");
    res.cork(() => {
      if (origin === "" || !originOk(origin)) {
        const message = origin === "" ? "a CORS preflight needs an Origin header" : originRefusal(origin);
        res.writeStatus(origin === "" ? "400 Bad Request" : "403 Forbidden");
        for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
        res.writeHeader("Content-Type", "application/json; charset=utf-8");
        res.end(JSON.stringify({ error: { code: origin === "" ? ErrorCode.InvalidRequest : ErrorCode.OriginNotAllowed, message } }));
        return;
      }
      res.writeStatus("204 No Content");
      for (const [name, value] of corsPreflightHeaders(origin)) res.writeHeader(name, value);
      res.end();
    });
  });

  for (const definition of routes) {
    const names = paramNames(definition.path);
    const register = {
      get: app.get.bind(app),
      post: app.post.bind(app),
      put: app.put.bind(app),
      patch: app.patch.bind(app),
      delete: app.del.bind(app),
    }[definition.method];
    const handle = (res: UWS.HttpResponse, req: UWS.HttpRequest) => {
      const started = monotonicClock();
      const requestId = randomBytes(8).toString("base64url");
      // Raw until run(): decoding may throw, and must become this request's error, not the process's.
      const rawParams = names.map((_, index) => req.getParameter(index) ?? "");
      const query = req.getQuery() ?? "";
      const origin = req.getHeader("origin");
      const authorization = req.getHeader("authorization");
      const contentType = req.getHeader("content-type");
      const headers: RequestHeaders = {
        cookie: req.getHeader("cookie"),
        userAgent: req.getHeader("user-agent"),
        accept: req.getHeader("accept"),
        contentType,
        origin,
        host: req.getHeader("host"),
        csrfToken: req.getHeader(CSRF_HEADER),
      };
      const ip = clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedForOf(req), options.proxyTrust);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const needsBody = definition.method !== "get" && definition.method !== "delete";
      const body = needsBody ? readBody(res, options.maxBodyBytes) : Promise.resolve(Buffer.alloc(0));
      // An oversized body may reject before run() awaits it (e.g. after an Origin refusal).
      body.catch(() => undefined);
      const log = logger.child({ requestId });

      let caller: Principal | undefined;
      const run = async (): Promise<RouteResult> => {
        if (!originOk(origin)) throw new ParleyError(ErrorCode.OriginNotAllowed, originRefusal(origin));
        await options.requestLimits?.admitAddress(ip);
        const params: Record<string, string> = {};
        names.forEach((name, index) => {
          params[name] = decodeUrlComponent(rawParams[index], `path parameter "${name}"`);
        });
        const raw = await body;
        let parsedBody: unknown;
        if (definition.body) {
          const isForm = contentType.startsWith("application/x-www-form-urlencoded");
          if (raw.length > 0 && !contentType.startsWith("application/json") && !isForm) {
            throw new ParleyError(ErrorCode.InvalidRequest, "send the body as application/json");
          }
          let json: unknown = {};
          try {
            if (raw.length > 0) json = isForm ? parseQuery(raw.toString("utf8")) : JSON.parse(raw.toString("utf8"));
          } catch {
            throw new ParleyError(ErrorCode.InvalidRequest, "body is not valid JSON");
          }
          parsedBody = definition.body.parse(json);
        }
        const parsedQuery = definition.query ? definition.query.parse(parseQuery(query)) : {};
        const principal = definition.auth === "public" ? (undefined as never) : await resolvePrincipal(authorization, ip, options.principals);
        caller = principal;
        if (principal) await options.requestLimits?.admitCaller(principal);
        if (principal?.kind === "user" && principal.mustEnrolTwoFactor && !definition.allowBeforeTwoFactor) {
          throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires two-factor: enrol at /v1/auth/2fa/enrol first");
        }
        if (definition.auth === "user" && principal.kind !== "user") {
          throw new ParleyError(ErrorCode.InsufficientRole, "this action needs a signed-in person, not an API key");
        }
        if (principal?.kind === "user" && principal.conversationScope && !definition.openToConversationSessions) {
          throw new ParleyError(
            ErrorCode.InsufficientRole,
            "this session came from an invitation link and reaches only its conversation: sign in with your password (and second factor) for anything else",
          );
        }
        return definition.handler({ params, query: parsedQuery, body: parsedBody, principal, ip, requestId, headers, log });
      };

      run()
        .catch((error: unknown) => {
          const result = errorResult(error);
          if (result.status >= 500) log.error({ err: error, route: definition.path }, "request failed");
          return result;
        })
        .then((result) => {
          if (aborted) return;
          const body = serialiseResult(result, (error) => log.error({ err: error, route: definition.path }, "response could not be serialised"));
          res.cork(() => {
            res.writeStatus(STATUS_TEXT[body.status] ?? `${body.status} Status`);
            // A route may replace a security header with its own (an HTML page's CSP), never drop one.
            const own = new Set(body.headers.map(([name]) => name.toLowerCase()));
            for (const [name, value] of SECURITY_HEADERS) if (!own.has(name.toLowerCase())) res.writeHeader(name, value);
            for (const [name, value] of corsResponseHeaders(origin, options.allowedOrigins)) res.writeHeader(name, value);
            for (const [name, value] of body.headers) res.writeHeader(name, value);
            res.writeHeader("X-Request-Id", requestId);
            if (body.contentType) res.writeHeader("Content-Type", body.contentType);
            res.end(body.content);
          });
          const code = (body.errorBody as { error?: { code?: unknown } } | undefined)?.error?.code;
          const errorCode = typeof code === "number" ? code : undefined;
          log.info(
            {
              method: definition.method.toUpperCase(),
              route: definition.path,
              status: body.status,
              code: errorCode,
              ms: Math.round(monotonicClock() - started),
              ip,
              user: caller ? actorId(caller) : undefined,
              org: caller?.orgId,
            },
            "http",
          );
          options.onResponse?.(definition, body.status, errorCode);
        })
        // Writing the response failed (the connection went meanwhile): this request only.
        .catch((error: unknown) => log.warn({ err: error, route: definition.path }, "response not written"));
    };
    // Whatever throws before the request's own error handling takes over is this request's 500.
    register(definition.path, (res, req) => {
      try {
        handle(res, req);
      } catch (error) {
        logger.error({ err: error, route: definition.path }, "request handler failed");
        writeInternalError(res);
      }
    });
  }
}

/** Answers 500 with the JSON error shape, unless the response was already ended or aborted. */
export function writeInternalError(res: UWS.HttpResponse): void {
  try {
    res.cork(() => {
      res.writeStatus("500 Internal Server Error");
      for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
      res.writeHeader("Content-Type", "application/json; charset=utf-8");
      res.end(JSON.stringify({ error: { code: ErrorCode.Internal, message: "internal error" } }));
    });
  } catch {
    // Already answered or aborted: nothing more to say on this connection.
  }
}

/** A response ready to write: status, headers, content type and bytes. */
interface SerialisedResult {
  status: number;
  headers: readonly (readonly [string, string])[];
  contentType: string | null;
  content: string | Uint8Array;
  /** The JSON body as sent (for logging its error code). */
  errorBody?: unknown;
}

/**
 * Serialises a route's result before anything is written, so a body that cannot be turned into
 * JSON (content nested too deep: JSON.stringify overflows the stack) becomes this request's error
 * (ContentTooComplex, or Internal) instead of an exception inside res.cork.
 */
function serialiseResult(result: RouteResult, report: (error: unknown) => void): SerialisedResult {
  const headers = result.headers ?? [];
  if (result.html !== undefined) return { status: result.status, headers, contentType: "text/html; charset=utf-8", content: result.html };
  if (result.raw !== undefined) return { status: result.status, headers, contentType: result.raw.contentType, content: result.raw.body };
  if (result.body === undefined) return { status: result.status, headers, contentType: null, content: "" };
  try {
    assertWithinLimits(result.body);
    return { status: result.status, headers, contentType: "application/json; charset=utf-8", content: toJson(result.body), errorBody: result.body };
  } catch (error) {
    report(error);
    const failed = errorResult(error instanceof ParleyError ? error : new ParleyError(ErrorCode.Internal, "internal error"));
    return { status: failed.status, headers: failed.headers ?? [], contentType: "application/json; charset=utf-8", content: toJson(failed.body), errorBody: failed.body };
  }
}
