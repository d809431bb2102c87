// Self-description: the public keys that verify access tokens (JWKS, for host applications and
// other services) and the OpenAPI document generated from the route declarations, with the
// routes served outside the router (health, readiness, the SSE stream, the socket upgrades).

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import { buildOpenApi, documentedErrors, type ExtraOperation } from "./openapi.ts";
import { type RouteDefinition, route } from "./route.ts";

const Jwks = z.object({
  keys: z.array(z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string().describe("the public key, base64url"), kid: z.string(), alg: z.literal("EdDSA"), use: z.literal("sig") })),
});

const upgradeHeaders: Record<string, unknown>[] = [
  { name: "Upgrade", in: "header", required: true, schema: { const: "websocket" } },
  { name: "Origin", in: "header", required: false, schema: { type: "string" }, description: "checked against PARLEY_ALLOWED_ORIGINS when sent" },
];

/** This document's outline; what it holds inside is described by the OpenAPI 3.1 specification itself. */
const OpenApiDocument = z.object({
  openapi: z.literal("3.1.0"),
  info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
  servers: z.array(z.object({ url: z.string() })),
  components: z.object({ securitySchemes: z.record(z.string(), z.unknown()), schemas: z.record(z.string(), z.unknown()) }),
  security: z.array(z.record(z.string(), z.array(z.string()))),
  paths: z.record(z.string(), z.unknown()),
});

/** Routes outside the router, described by hand here next to the document they go into. */
export const EXTRA_OPERATIONS: readonly ExtraOperation[] = [
  {
    method: "get",
    path: "/healthz",
    operationId: "getHealthz",
    summary: "Liveness: 200 while the process can recover by itself; 503 once a worker thread died (never restarted in-process: restart the process).",
    tags: ["operations"],
    public: true,
    responses: {
      200: { description: "Running.", content: { "application/json": { schema: { type: "object", properties: { status: { const: "ok" } }, required: ["status"], additionalProperties: false } } } },
      503: {
        description: "A worker thread died: `dead` names each (store, directory, audit log or partner storage worker) and why.",
        content: {
          "application/json": {
            schema: {
              type: "object",
              properties: {
                status: { const: "dead" },
                dead: {
                  type: "array",
                  items: { type: "object", properties: { name: { type: "string" }, cause: { type: "string" } }, required: ["name", "cause"], additionalProperties: false },
                },
              },
              required: ["status", "dead"],
              additionalProperties: false,
            },
          },
        },
      },
    },
  },
  {
    method: "get",
    path: "/readyz",
    operationId: "getReadyz",
    summary: "Readiness: 200 when the store commits, the directory answers, no worker thread has died and the node is not shutting down.",
    tags: ["operations"],
    public: true,
    responses: Object.fromEntries(
      [200, 503].map((status) => [
        status,
        {
          description: status === 200 ? "Ready (`degraded` while the bus is down)." : "Not ready (`dead` names each worker thread that died, as /healthz does).",
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: {
                  status: { enum: ["ready", "degraded", "not-ready"] },
                  store: { enum: ["ok", "down"] },
                  directory: { enum: ["ok", "down"] },
                  bus: { type: "string" },
                  shuttingDown: { type: "boolean" },
                  dead: {
                    type: "array",
                    items: { type: "object", properties: { name: { type: "string" }, cause: { type: "string" } }, required: ["name", "cause"], additionalProperties: false },
                  },
                },
                required: ["status", "store", "directory", "bus", "shuttingDown"],
                additionalProperties: false,
              },
            },
          },
        },
      ]),
    ),
  },
  {
    method: "get",
    path: "/v1/events/stream",
    operationId: "getEventsStream",
    summary: "The organisation's events, live, as Server-Sent Events (API keys with a conversations scope, admins, owners).",
    description:
      "Each SSE message's `id` is the event's cursor and its `data` the event (as in GET /v1/events). Reconnect with `Last-Event-ID` (or `?cursor=`) to continue after it; `: keep-alive` comments keep proxies from closing the stream.",
    tags: ["events"],
    public: false,
    parameters: [
      { name: "cursor", in: "query", required: false, schema: { type: "integer", minimum: 0 }, description: "continue after this cursor (absent: from now)" },
      { name: "types", in: "query", required: false, schema: { type: "string" }, description: "comma-separated event types" },
      { name: "Last-Event-ID", in: "header", required: false, schema: { type: "string" } },
    ],
    responses: {
      200: { description: "The stream.", content: { "text/event-stream": { schema: { type: "string" } } } },
      ...documentedErrors([
        ErrorCode.InvalidRequest,
        ErrorCode.InvalidCredentials,
        ErrorCode.Forbidden,
        ErrorCode.InsufficientRole,
        ErrorCode.EventCursorExpired,
        ErrorCode.RateLimited,
        ErrorCode.OriginNotAllowed,
      ]),
    },
  },
  {
    method: "get",
    path: "/ws",
    operationId: "openParleySocket",
    summary: "WebSocket upgrade: the Parley protocol (many conversations per socket).",
    description:
      "Binary frames (protocol/): the first frame is `auth` with an access token, a host-application token or an API key; then `join`, enveloped y-protocols sync and awareness messages, acks and errors. Close codes 4400-4499 mean do not reconnect; 1011/1013/4500-4599 reconnect with backoff.",
    tags: ["realtime"],
    public: true,
    parameters: upgradeHeaders,
    responses: {
      101: { description: "Switching protocols: the socket is open; authenticate with the first frame." },
      ...documentedErrors([ErrorCode.OriginNotAllowed, ErrorCode.RateLimited]),
    },
  },
  {
    method: "get",
    path: "/yjs/{conversationId}",
    operationId: "openYjsSocket",
    summary: "WebSocket upgrade: plain y-websocket, one conversation per socket (WebsocketProvider works unchanged).",
    description:
      "The token (access token, host-application token or API key) is checked before the upgrade. A refusal is an upgrade closed at once with 4401 (bad token), 4403 (no access, origin refused) or 4400 (bad room name), after a y-protocols permission-denied message, so y-websocket does not retry it.",
    tags: ["realtime"],
    public: true,
    parameters: [
      { name: "conversationId", in: "path", required: true, schema: { type: "string" } },
      { name: "token", in: "query", required: true, schema: { type: "string" } },
      ...upgradeHeaders,
    ],
    responses: {
      101: { description: "Switching protocols: syncing starts at once (or the socket is closed with a 44xx code)." },
      ...documentedErrors([ErrorCode.RateLimited]),
    },
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    summary: "Prometheus metrics (text format), behind PARLEY_METRICS_TOKEN; 404 when that is not set.",
    tags: ["operations"],
    public: false,
    responses: {
      200: { description: "The metrics.", content: { "text/plain": { schema: { type: "string" } } } },
      ...documentedErrors([ErrorCode.InvalidCredentials, ErrorCode.NotFound]),
    },
  },
];

/** The JWKS and OpenAPI routes; `all` is every route of the API, for the document. */
export function metaRoutes(keys: ServerKeys, all: () => readonly RouteDefinition[], serverUrl: string) {
  return [
    route({
      method: "get",
      path: "/.well-known/jwks.json",
      auth: "public",
      summary: "Public keys that verify Parley access tokens (EdDSA).",
      tags: ["meta"],
      response: { status: 200, description: "A JWK Set.", schema: Jwks },
      async handler() {
        const jwk = keys.verifyKey.export({ format: "jwk" });
        return { status: 200, body: { keys: [{ ...jwk, kid: keys.signingKid, alg: "EdDSA", use: "sig" }] } };
      },
    }),
    route({
      method: "get",
      path: "/openapi.json",
      auth: "public",
      summary: "This document.",
      tags: ["meta"],
      response: { status: 200, description: "OpenAPI 3.1.", schema: OpenApiDocument },
      async handler() {
        return { status: 200, body: buildOpenApi(all(), { serverUrl, extra: EXTRA_OPERATIONS }) };
      },
    }),
  ];
}
