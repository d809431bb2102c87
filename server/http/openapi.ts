// Builds the OpenAPI 3.1 document from the route declarations: paths, bodies (zod → JSON
// Schema), success responses and the documented error codes, so the description is never
// written by hand and cannot drift from what the router enforces.

import { z } from "zod";
import type { RouteDefinition } from "./route.ts";
import { statusFor } from "./router.ts";

function jsonSchema(schema: z.ZodType, io: "input" | "output"): unknown {
  return z.toJSONSchema(schema, { io, unrepresentable: "any" });
}

/** The OpenAPI document for a set of routes. */
export function buildOpenApi(routes: readonly RouteDefinition[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const parameters = [...r.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    if (r.query) {
      const schema = jsonSchema(r.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        parameters.push({ name, in: "query", required: schema.required?.includes(name) ?? false, schema: property as { type: string } });
      }
    }
    const responses: Record<string, unknown> = {
      [r.response.status]: {
        description: r.response.description,
        ...(r.response.html
          ? { content: { "text/html": { schema: { type: "string" } } } }
          : r.response.schema
            ? { content: { "application/json": { schema: jsonSchema(r.response.schema, "output") } } }
            : {}),
      },
    };
    for (const code of r.errors ?? []) {
      const status = String(statusFor(code));
      const existing = responses[status] as { description: string } | undefined;
      responses[status] = { description: `${existing ? `${existing.description}, ` : "Error "}code ${code}` };
    }
    paths[path] ??= {};
    paths[path][r.method] = {
      summary: r.summary,
      tags: r.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(r.body, "input") } } } } : {}),
      responses,
      ...(r.auth === "public" ? { security: [] } : {}),
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Parley",
      version: "1",
      description:
        "Conversations between organisations. Errors are `{ error: { code, message } }` with the numeric codes of protocol/codes.ts.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An access token (JWT) or an API key (pk_…)." } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
