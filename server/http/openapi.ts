// Builds the OpenAPI 3.1 document from the route declarations: paths, bodies and responses (the
// same zod schemas the router validates with, converted by z.toJSONSchema), one shared error
// schema, operationIds and servers, plus the routes outside the router (health, readiness, the
// SSE stream, the two WebSocket upgrades) from their own declarations below. Written by no hand,
// so it cannot drift from what the server does; a test validates the document with
// @redocly/openapi-core and every response the tests receive against it.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { RouteDefinition } from "./route.ts";
import { statusFor } from "./router.ts";

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

/** The body of every error response, HTTP and (as fields of an error frame) socket alike. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.number().int().describe("numeric error code (protocol/codes.ts), stable across versions"),
      message: z.string().describe("what went wrong, for people"),
      // A password refused as too weak (code 2009) says why and how to do better.
      score: z.number().int().min(0).max(4).optional().describe("WeakPassword: the zxcvbn strength (0-4)"),
      problems: z.array(z.string()).optional().describe("WeakPassword: what is wrong with it"),
      suggestions: z.array(z.string()).optional().describe("WeakPassword: how to choose a better one"),
      secondFactors: z
        .array(z.enum(["security-key", "authenticator-app", "recovery-code"]))
        .optional()
        .describe("TwoFactorRequired (the password was right): the second factors this account can sign in with"),
    }),
  })
  .describe("An error.");

const ERROR_REF = { $ref: "#/components/schemas/Error" };

/** Errors any route may answer with, besides those it declares. */
function commonErrors(route: Pick<RouteDefinition, "auth" | "body">): ErrorCode[] {
  const codes: ErrorCode[] = [ErrorCode.InvalidRequest, ErrorCode.RateLimited, ErrorCode.OriginNotAllowed, ErrorCode.Internal];
  if (route.auth !== "public") codes.push(ErrorCode.InvalidCredentials, ErrorCode.IpNotAllowed);
  if (route.body) codes.push(ErrorCode.FrameTooLarge);
  return codes;
}

const CODE_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code as number, name]));

/** A stable operationId from method and path: GET /v1/conversations/:id/messages → getConversationsByIdMessages. */
export function operationIdOf(method: string, path: string): string {
  const words = path
    .split("/")
    .filter((part) => part && part !== "v1")
    .flatMap((part) => (part.startsWith(":") ? ["by", part.slice(1)] : part.replace(/^\./, "").split(/[-_.]/)));
  return method.toLowerCase() + words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join("");
}

/** A route the router does not serve, described for the document (health, SSE, sockets). */
export interface ExtraOperation {
  method: "get";
  /** OpenAPI path, e.g. `/yjs/{conversationId}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  public: boolean;
  parameters?: Json[];
  responses: Json;
}

function errorResponses(codes: readonly ErrorCode[]): Json {
  const byStatus = new Map<number, string[]>();
  for (const code of codes) {
    const status = statusFor(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), `${code} ${CODE_NAMES.get(code) ?? ""}`.trim()]);
  }
  const responses: Json = {};
  for (const [status, names] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = { description: `Error: ${[...new Set(names)].join(", ")}`, content: { "application/json": { schema: ERROR_REF } } };
  }
  return responses;
}

function successResponse(r: RouteDefinition): Json {
  const { status, schema, description, html, contentType } = r.response;
  if (html) return { [status]: { description, content: { "text/html": { schema: { type: "string" } } } } };
  if (contentType) return { [status]: { description, content: { [contentType]: { schema: { type: "string" } } } } };
  if (!schema) return { [status]: { description } };
  return { [status]: { description, content: { "application/json": { schema: jsonSchema(schema, "output") } } } };
}

/** The OpenAPI document for a set of routes. */
export function buildOpenApi(routes: readonly RouteDefinition[], options: { serverUrl: string; extra?: readonly ExtraOperation[] }): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const parameters: Json[] = [...r.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    if (r.query) {
      const schema = jsonSchema(r.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        parameters.push({ name, in: "query", required: schema.required?.includes(name) ?? false, schema: property });
      }
    }
    const codes = [...commonErrors(r), ...(r.errors ?? [])];
    const responses: Json = { ...errorResponses(codes), ...successResponse(r) };
    paths[path] ??= {};
    paths[path][r.method] = {
      operationId: r.operationId ?? operationIdOf(r.method, r.path),
      summary: r.summary,
      tags: r.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body
        ? {
            requestBody: {
              required: true,
              content: {
                "application/json": { schema: jsonSchema(r.body, "input") },
                "application/x-www-form-urlencoded": { schema: jsonSchema(r.body, "input") },
              },
            },
          }
        : {}),
      responses,
      ...(r.auth === "public" ? { security: [] } : {}),
    };
  }
  for (const extra of options.extra ?? []) {
    paths[extra.path] ??= {};
    paths[extra.path][extra.method] = {
      operationId: extra.operationId,
      summary: extra.summary,
      ...(extra.description ? { description: extra.description } : {}),
      tags: extra.tags,
      ...(extra.parameters ? { parameters: extra.parameters } : {}),
      responses: extra.responses,
      ...(extra.public ? { security: [] } : {}),
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Parley",
      version: "1",
      description:
        "Conversations between organisations. Errors are `{ error: { code, message } }` (components/schemas/Error) with the numeric codes of protocol/codes.ts. The realtime protocol runs over the WebSocket upgrades `/ws` and `/yjs/{conversationId}`.",
    },
    servers: [{ url: options.serverUrl }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An access token (JWT: Parley's or a configured host application's) or an API key (pk_…)." } },
      schemas: { Error: jsonSchema(ErrorBody, "output") },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

/** Error response entries for hand-declared operations. */
export function documentedErrors(codes: readonly ErrorCode[]): Json {
  return errorResponses(codes);
}
