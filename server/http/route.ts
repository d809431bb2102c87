// How an HTTP route is declared: method, path, who may call it, zod schemas for its input and
// output, and a handler over plain data. The router enforces everything declared here; the
// OpenAPI document is generated from the same declarations, so the two cannot drift apart.

import type { z } from "zod";
import type { ErrorCode } from "../../protocol/index.ts";
import type { Logger } from "../platform/logger.ts";
import type { Principal } from "./principal.ts";

/** Who may call a route. */
export type RouteAuth =
  /** Anyone (sign-up, login, invitation links). */
  | "public"
  /** A signed-in person. */
  | "user"
  /** A signed-in person or an API key. */
  | "principal";

/** The request headers handlers may look at (read before the first await: uWS requests are short-lived). */
export interface RequestHeaders {
  cookie: string;
  userAgent: string;
  accept: string;
  contentType: string;
  origin: string;
  host: string;
  /** The CSRF token the web app echoes from its cookie (see session-cookies.ts). */
  csrfToken: string;
}

/** What a handler sees of the request. */
export interface RouteContext<B, Q> {
  params: Record<string, string>;
  query: Q;
  body: B;
  /** Set for routes that are not public. */
  principal: Principal;
  ip: string;
  requestId: string;
  headers: RequestHeaders;
  log: Logger;
}

/** What a handler returns. */
export interface RouteResult {
  status: number;
  body?: unknown;
  /** An HTML page instead of JSON (the invitation landing page). */
  html?: string;
  /** A body of another type, sent as is (JSON lines of audit exports). */
  raw?: { contentType: string; body: string };
  headers?: [string, string][];
}

/** A declared route. */
export interface RouteDefinition<B = unknown, Q = unknown> {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** uWS pattern, e.g. `/v1/conversations/:id`. */
  path: string;
  auth: RouteAuth;
  summary: string;
  tags: string[];
  body?: z.ZodType<B>;
  query?: z.ZodType<Q>;
  /** Names the operation in the OpenAPI document (default: derived from method and path). */
  operationId?: string;
  /**
   * Success status and response body, for the OpenAPI document and the tests that check every
   * response against it: a zod schema for JSON, `html` for a page, `contentType` for another
   * text type, `schema: null` for no body.
   */
  response: { status: number; schema?: z.ZodType | null; description: string; html?: boolean; contentType?: string };
  /** Error codes this route may answer with (documented). */
  errors?: ErrorCode[];
  /** Responses carry credentials: never cached, never logged. */
  sensitive?: boolean;
  /** Open to people whose organisation requires two-factor before they enrolled (enrolment itself). */
  allowBeforeTwoFactor?: boolean;
  /**
   * Open to sessions opened by an invitation link that are scoped to one conversation: routes
   * about one conversation (which must check it through AccessControl, which enforces the scope)
   * and about the session itself. Everything else refuses them.
   */
  openToConversationSessions?: boolean;
  handler(context: RouteContext<B, Q>): Promise<RouteResult>;
}

/** Declares a route with its types inferred from the schemas. */
export function route<B = undefined, Q = Record<string, never>>(definition: RouteDefinition<B, Q>): RouteDefinition {
  return definition as unknown as RouteDefinition;
}
