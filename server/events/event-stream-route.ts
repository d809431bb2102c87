// GET /v1/events/stream: an organisation's events as Server-Sent Events. Each event is one SSE
// message whose `id` is its cursor, so a client that reconnects with `Last-Event-ID` (or
// `?cursor=`) continues exactly after the last event it got. Heartbeat comments keep proxies
// from timing the stream out; a slow reader pauses the follower (nothing buffers beyond one page)
// and is dropped if it stays stuck; shutdown ends every stream cleanly so clients reconnect.

import { randomBytes } from "node:crypto";
import { ErrorCode, type EventType, isEventType } from "../../protocol/index.ts";
import { describeError, ParleyError } from "../platform/errors.ts";
import { type PrincipalDeps, resolvePrincipal } from "../http/principal.ts";
import { SECURITY_HEADERS } from "../http/respond.ts";
import { statusFor } from "../http/router.ts";
import type { ConnectionLimits } from "../limits/connection-limits.ts";
import { RateLimitError, type RequestLimits } from "../limits/request-limits.ts";
import type { Logger } from "../platform/logger.ts";
import { clientAddress, forwardedForOf, type ProxyTrust } from "../platform/client-address.ts";
import { parseQueryString } from "../platform/url-decoding.ts";
import type { UWS } from "../platform/uws.ts";
import { type EventAccess, type EventReader, readerOfPrincipal, requireEventReader } from "./event-access.ts";
import { cursorError, EventFollower } from "./event-follower.ts";
import type { EventNotifier } from "./event-notifier.ts";
import type { EventStore, StoredEvent } from "./event-store.ts";
import { corsResponseHeaders, originAllowed, originRefusal } from "../platform/origin-policy.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Dependencies of the SSE route. */
export interface EventStreamRouteDeps {
  store: EventStore;
  notifier: EventNotifier;
  access: EventAccess;
  principals: PrincipalDeps;
  allowedOrigins: readonly string[];
  /** Which proxies may name the client (the same computation as every other entry point). */
  proxyTrust: ProxyTrust;
  /** Interval of heartbeat comments. */
  heartbeatMs: number;
  /** How often a running stream's credentials are checked again. */
  recheckMs: number;
  /** A reader that takes nothing for this long is disconnected (it resumes by reconnecting). */
  maxStalledMs: number;
  /** Open streams one organisation may hold (more get 429). */
  maxStreamsPerOrg: number;
  /** Per-address cap on open streams (shared with the sockets); none when absent. */
  connections?: ConnectionLimits;
  /** Request rate limits; opening a stream is a request. */
  requestLimits?: RequestLimits;
  logger: Logger;
}

/** The running streams, for shutdown. */
export interface EventStreams {
  /** Open streams. */
  readonly size: number;
  /** Ends every stream (clients reconnect with their last cursor). */
  close(): void;
}

const STATUS_TEXT: Record<number, string> = {
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  410: "410 Gone",
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  503: "503 Service Unavailable",
};

/** The SSE retry hint: how long a client waits before reconnecting (ms). */
const RETRY_HINT_MS = 2000;

/** Parses a cursor parameter: a non-negative integer, or undefined when absent. */
export function parseCursor(raw: string | null | undefined, name: string): number | undefined {
  if (raw === null || raw === undefined || raw === "") return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new ParleyError(ErrorCode.InvalidRequest, `${name}: must be a non-negative integer cursor`);
  return Number(raw);
}

/** Parses a comma-separated `types` parameter. */
export function parseTypes(raw: string | null | undefined): EventType[] | undefined {
  if (!raw) return undefined;
  const types = raw.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
  for (const type of types) if (!isEventType(type)) throw new ParleyError(ErrorCode.InvalidRequest, `types: unknown event type "${type}"`);
  return types.length > 0 ? [...new Set(types as EventType[])] : undefined;
}

/** Formats events as SSE messages. */
export function sseMessages(events: readonly StoredEvent[]): string {
  let chunk = "";
  for (const event of events) chunk += `id: ${event.cursor}\ndata: ${event.json}\n\n`;
  return chunk;
}

interface Stream {
  res: UWS.HttpResponse;
  reader: EventReader;
  follower: EventFollower | null;
  stalledSince: number | null;
  checkedAt: number;
  checking: boolean;
  ended: boolean;
  end(error?: unknown): void;
}

/** Registers the SSE route; returns the handle that ends its streams on shutdown. */
export function registerEventStreamRoute(app: UWS.TemplatedApp, deps: EventStreamRouteDeps): EventStreams {
  const streams = new Set<Stream>();
  let closed = false;
  const originOk = (origin: string) => originAllowed(origin, deps.allowedOrigins);

  const write = (stream: Stream, chunk: string): boolean => {
    if (stream.ended) return false;
    let ok = false;
    stream.res.cork(() => {
      ok = stream.res.write(chunk);
    });
    if (!ok && stream.stalledSince === null) stream.stalledSince = monotonicClock();
    return ok;
  };

  const sweep = setInterval(() => {
    const now = monotonicClock();
    for (const stream of streams) {
      if (stream.stalledSince !== null) {
        if (now - stream.stalledSince > deps.maxStalledMs) stream.end(new ParleyError(ErrorCode.RateLimited, "the stream was not read in time; reconnect"));
        continue;
      }
      write(stream, ": keep-alive\n\n");
      if (!stream.checking && now - stream.checkedAt >= deps.recheckMs) {
        stream.checking = true;
        deps.access.check(stream.reader).then(
          () => {
            stream.checking = false;
            stream.checkedAt = monotonicClock();
          },
          (error: unknown) => stream.end(error),
        );
      }
    }
  }, deps.heartbeatMs);
  sweep.unref();

  app.get("/v1/events/stream", (res, req) => {
    const requestId = randomBytes(8).toString("base64url");
    const authorization = req.getHeader("authorization");
    const origin = req.getHeader("origin");
    const lastEventId = req.getHeader("last-event-id");
    const forwardedFor = forwardedForOf(req);
    const rawQuery = req.getQuery() ?? "";
    const ip = clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedFor, deps.proxyTrust);
    const log = deps.logger.child({ requestId });
    // A slot among the address's open connections, held until the stream is over however it ends.
    let holdsSlot = deps.connections?.acquire(ip) ?? false;
    const releaseSlot = () => {
      if (holdsSlot) deps.connections?.release(ip);
      holdsSlot = false;
    };

    const stream: Stream = {
      res,
      reader: { kind: "apiKey", keyId: "", orgId: "" },
      follower: null,
      stalledSince: null,
      checkedAt: monotonicClock(),
      checking: false,
      ended: false,
      end(error?: unknown) {
        if (stream.ended) return;
        releaseSlot();
        stream.follower?.stop();
        streams.delete(stream);
        if (error !== undefined) {
          const { code, message } = describeError(error);
          if (code === ErrorCode.Internal) log.error({ err: error }, "event stream failed");
          write(stream, `event: parley-error\ndata: ${JSON.stringify({ code, message })}\n\n`);
        }
        stream.ended = true;
        // Close the connection too: a client must not reuse it for a server that is going away.
        res.cork(() => res.end(undefined, closed));
        log.info({ org: stream.reader.orgId, cursor: stream.follower?.position }, "event stream ended");
      },
    };
    res.onAborted(() => {
      releaseSlot();
      stream.follower?.stop();
      stream.ended = true;
      streams.delete(stream);
    });
    res.onWritable(() => {
      stream.stalledSince = null;
      stream.follower?.resume();
      return true;
    });

    const refuse = (error: unknown) => {
      releaseSlot();
      stream.ended = true;
      const { code, message } = describeError(error);
      if (code === ErrorCode.Internal) log.error({ err: error }, "event stream failed to start");
      const status = statusFor(code);
      res.cork(() => {
        res.writeStatus(STATUS_TEXT[status] ?? `${status} Error`);
        for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
        const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
        if (typeof retryAfter === "number") res.writeHeader("Retry-After", String(Math.max(1, Math.ceil(retryAfter))));
        for (const [name, value] of corsResponseHeaders(origin, deps.allowedOrigins)) res.writeHeader(name, value);
        res.writeHeader("Content-Type", "application/json; charset=utf-8");
        res.writeHeader("X-Request-Id", requestId);
        res.end(JSON.stringify({ error: { code, message } }), closed);
      });
      log.info({ status, code }, "event stream refused");
    };

    const open = async (): Promise<{ after: number; types: EventType[] | undefined; first: StoredEvent[] }> => {
      if (closed) throw new ParleyError(ErrorCode.ShuttingDown, "the server is shutting down; reconnect");
      if (!originOk(origin)) throw new ParleyError(ErrorCode.OriginNotAllowed, originRefusal(origin));
      if (deps.connections && !holdsSlot) throw new RateLimitError("connections", 5, `at most ${deps.connections.maxPerAddress} open connections per address`);
      await deps.requestLimits?.admitAddress(ip);
      const principal = await resolvePrincipal(authorization, ip, deps.principals);
      await deps.requestLimits?.admitCaller(principal);
      if ("mustEnrolTwoFactor" in principal && principal.mustEnrolTwoFactor === true) {
        throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires two-factor: enrol first");
      }
      requireEventReader(principal);
      stream.reader = readerOfPrincipal(principal);
      let open = 0;
      for (const other of streams) if (other.reader.orgId === principal.orgId) open++;
      if (open >= deps.maxStreamsPerOrg) {
        throw new ParleyError(ErrorCode.RateLimited, `at most ${deps.maxStreamsPerOrg} event streams per organisation at once`);
      }
      const query = parseQueryString(rawQuery);
      const types = parseTypes(query.get("types"));
      // A reconnecting EventSource sends Last-Event-ID; it is newer than the URL's cursor.
      const given = parseCursor(lastEventId, "Last-Event-ID") ?? parseCursor(query.get("cursor") ?? query.get("after"), "cursor");
      if (given === undefined) return { after: await deps.store.head(principal.orgId), types, first: [] };
      // Read the first page before answering, so a stale cursor is an HTTP error, not a broken stream.
      const read = await deps.store.read(principal.orgId, given, 200, types);
      if (read.status !== "ok") throw cursorError(read, given);
      return { after: read.events.length > 0 ? read.events[read.events.length - 1].cursor : given, types, first: read.events };
    };

    open().then(
      ({ after, types, first }) => {
        if (stream.ended) return;
        if (closed) {
          refuse(new ParleyError(ErrorCode.ShuttingDown, "the server is shutting down; reconnect"));
          return;
        }
        res.cork(() => {
          res.writeStatus("200 OK");
          for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
          for (const [name, value] of corsResponseHeaders(origin, deps.allowedOrigins)) res.writeHeader(name, value);
          res.writeHeader("Content-Type", "text/event-stream; charset=utf-8");
          res.writeHeader("X-Accel-Buffering", "no");
          res.writeHeader("X-Request-Id", requestId);
          res.write(`retry: ${RETRY_HINT_MS}\n: connected\n\n`);
        });
        streams.add(stream);
        log.info({ org: stream.reader.orgId, reader: stream.reader.kind, after }, "event stream started");
        if (first.length > 0) write(stream, sseMessages(first));
        stream.follower = new EventFollower(deps, stream.reader.orgId, after, types, {
          deliver: (events) => write(stream, sseMessages(events)),
          failed: (error) => stream.end(error),
        });
      },
      (error: unknown) => {
        if (!stream.ended) refuse(error);
      },
    );
  });

  return {
    get size() {
      return streams.size;
    },
    close() {
      closed = true;
      clearInterval(sweep);
      for (const stream of [...streams]) stream.end();
    },
  };
}
