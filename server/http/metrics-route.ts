// GET /metrics in the Prometheus text format: on the main port behind PARLEY_METRICS_TOKEN
// (Authorization: Bearer <token>), and/or without a token on a separate address
// (PARLEY_METRICS_ADDRESS) that only the monitoring network should reach. Off otherwise: the
// numbers describe the whole server, so they are never public by default.

import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import { ErrorCode } from "../../protocol/index.ts";
import type { Logger } from "../platform/logger.ts";
import type { ServerMetrics } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import { SECURITY_HEADERS, sendError } from "./respond.ts";

function tokenMatches(authorization: string, token: string): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match) return false;
  const given = Buffer.from(match[1]);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Registers /metrics on the main app (answers 404 when no token is configured). */
export function registerMetricsRoute(app: UWS.TemplatedApp, deps: { metrics: ServerMetrics; token: string | null; logger: Logger }): void {
  app.get("/metrics", (res, req) => {
    const authorization = req.getHeader("authorization");
    if (!deps.token) {
      sendError(res, "404 Not Found", ErrorCode.NotFound, "metrics are not served here: set PARLEY_METRICS_TOKEN, or read them at PARLEY_METRICS_ADDRESS");
      return;
    }
    if (!tokenMatches(authorization, deps.token)) {
      sendError(res, "401 Unauthorized", ErrorCode.InvalidCredentials, "metrics need Authorization: Bearer <PARLEY_METRICS_TOKEN>");
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    deps.metrics.render().then(
      ({ contentType, body }) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus("200 OK");
          for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
          res.writeHeader("Content-Type", contentType);
          res.end(body);
        });
      },
      (error: unknown) => {
        deps.logger.error({ err: error }, "metrics could not be collected");
        if (!aborted) sendError(res, "500 Internal Server Error", ErrorCode.Internal, "metrics could not be collected");
      },
    );
  });
}

/** A listener of its own for /metrics (no token: keep the address private). */
export async function listenForMetrics(address: { host: string; port: number }, metrics: ServerMetrics, logger: Logger): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType }).end(body),
      (error: unknown) => {
        logger.error({ err: error }, "metrics could not be collected");
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : address.port;
  logger.info({ host: address.host, port }, "metrics listening");
  return {
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
