// The API description cannot drift: /openapi.json is generated from the route declarations (the
// zod schemas that validate requests), describes every route (health, readiness, SSE, both
// socket upgrades included) with operationIds, servers and one shared error schema, and passes
// a real OpenAPI validator (@redocly/openapi-core). Responses themselves are checked against it
// in every test that uses apiClient (test/helpers/http-client.ts).

import { createConfig, lintFromString } from "@redocly/openapi-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.ts";

type Operation = { operationId?: string; responses: Record<string, { content?: Record<string, { schema?: unknown }> }> };

let server: TestServer;
let doc: { openapi: string; servers: { url: string }[]; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_PUBLIC_URL: "https://parley.example" } });
  doc = (await (await fetch(`${server.httpUrl}/openapi.json`)).json()) as typeof doc;
});
afterAll(async () => {
  await server.cleanup();
});

function operations(): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => [path, method, op] as [string, string, Operation]));
}

describe("/openapi.json", () => {
  it("passes @redocly/openapi-core's validation with no error", async () => {
    const config = await createConfig({ extends: ["recommended"], rules: { "info-license": "off", "operation-4xx-response": "off" } });
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: "openapi.json", config });
    const errors = problems.filter((p) => p.severity === "error").map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ""}`);
    expect(errors).toEqual([]);
  });

  it("names the server and describes health, readiness, the SSE stream and both socket upgrades", () => {
    expect(doc.servers).toEqual([{ url: "https://parley.example" }]);
    for (const path of ["/healthz", "/readyz", "/v1/events/stream", "/ws", "/yjs/{conversationId}", "/metrics"]) expect(doc.paths[path]?.get, path).toBeDefined();
    expect(doc.paths["/ws"].get.responses["101"]).toBeDefined();
    expect(doc.paths["/yjs/{conversationId}"].get.responses["101"]).toBeDefined();
    expect(doc.paths["/v1/events/stream"].get.responses["200"].content?.["text/event-stream"]).toBeDefined();
  });

  it("gives every operation a unique operationId and every error one shared schema", () => {
    const ids = operations().map(([, , op]) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.components.schemas.Error).toBeDefined();
    for (const [path, method, op] of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) >= 400 && path !== "/readyz") expect(response.content?.["application/json"]?.schema, `${method} ${path} ${status}`).toEqual({ $ref: "#/components/schemas/Error" });
      }
    }
  });

  it("declares a response body for every success that has one", () => {
    const missing: string[] = [];
    for (const [path, method, op] of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        const code = Number(status);
        if (code >= 200 && code < 300 && code !== 204 && !response.content) missing.push(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
