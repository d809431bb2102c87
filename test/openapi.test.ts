// The API description cannot drift: /openapi.json is generated from the route declarations (the
// zod schemas that validate requests), describes every route (health, readiness, SSE, both
// socket upgrades included) with operationIds, servers and one shared error schema, and passes
// a real OpenAPI validator (@redocly/openapi-core). Every schema in it is exact enough to
// generate a client from: typed, objects with their properties and closed where they are
// responses (the few truly open payloads are listed below, each with its reason). Responses
// themselves are checked against it in every test that uses apiClient
// (test/helpers/http-client.ts), so a field the server sends but does not declare fails there.

import { createConfig, lintFromString } from "@redocly/openapi-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.ts";

type Operation = {
  operationId?: string;
  parameters?: { name: string; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};
type Schema = Record<string, unknown>;

/**
 * Places (as `loosenessOf` names them) whose payload is open by nature, each with why. Nothing
 * else may be an object without declared properties, an untyped value or an open response object.
 */
const OPEN_BY_DESIGN: Record<string, string> = {
  // The document describing itself: its paths and components are defined by the OpenAPI 3.1 specification.
  "get /openapi.json 200 .paths": "OpenAPI 3.1 path items",
  "get /openapi.json 200 .paths{}": "OpenAPI 3.1 path items",
  "get /openapi.json 200 .components.securitySchemes": "OpenAPI 3.1 security schemes",
  "get /openapi.json 200 .components.securitySchemes{}": "OpenAPI 3.1 security schemes",
  "get /openapi.json 200 .components.schemas": "JSON Schema 2020-12 documents",
  "get /openapi.json 200 .components.schemas{}": "JSON Schema 2020-12 documents",
  // WebAuthn extension inputs: a registry of extensions the specification keeps growing.
  "post /v1/auth/webauthn/register/options 200 .options.extensions": "WebAuthn extension inputs",
  "post /v1/auth/webauthn/register/options 200 .options.extensions{}": "WebAuthn extension inputs",
  "post /v1/auth/webauthn/login/options 200 .options.extensions": "WebAuthn extension inputs",
  "post /v1/auth/webauthn/login/options 200 .options.extensions{}": "WebAuthn extension inputs",
  // The browser's PublicKeyCredential JSON, passed as it is to @simplewebauthn/server, which
  // checks it field by field; registration and assertion differ and the specification adds fields.
  "post /v1/auth/webauthn/register body .response{}": "PublicKeyCredential JSON (extra fields)",
  "post /v1/auth/webauthn/register body .response.response": "AuthenticatorAttestationResponse JSON",
  "post /v1/auth/webauthn/register body .response.response{}": "AuthenticatorAttestationResponse JSON",
  "post /v1/auth/webauthn/login body .response{}": "PublicKeyCredential JSON (extra fields)",
  "post /v1/auth/webauthn/login body .response.response": "AuthenticatorAssertionResponse JSON",
  "post /v1/auth/webauthn/login body .response.response{}": "AuthenticatorAssertionResponse JSON",
  "post /v1/auth/login body .webauthn.response{}": "PublicKeyCredential JSON (extra fields)",
  "post /v1/auth/login body .webauthn.response.response": "AuthenticatorAssertionResponse JSON",
  "post /v1/auth/login body .webauthn.response.response{}": "AuthenticatorAssertionResponse JSON",
  "post /v1/auth/recovery-codes body .webauthn.response{}": "PublicKeyCredential JSON (extra fields)",
  "post /v1/auth/recovery-codes body .webauthn.response.response": "AuthenticatorAssertionResponse JSON",
  "post /v1/auth/recovery-codes body .webauthn.response.response{}": "AuthenticatorAssertionResponse JSON",
};

const ANNOTATIONS = new Set(["description", "default", "title", "examples", "deprecated", "readOnly", "writeOnly"]);

/**
 * Every place under `schema` that a client generator could not type exactly: an untyped schema
 * (`{}`, or no type, const, enum, $ref or combinator), an object without declared properties
 * (nor a typed value for its keys), and, in responses (`closed`), an object that admits
 * undeclared properties.
 */
function loosenessOf(schema: unknown, where: string, closed: boolean, found: string[]): string[] {
  if (schema === null || typeof schema !== "object") return found;
  const s = schema as Schema;
  if (typeof s.$ref === "string") return found;
  const typed = ["type", "const", "enum", "anyOf", "oneOf", "allOf", "not"].some((key) => key in s);
  if (!typed) {
    found.push(`${where} — untyped ${JSON.stringify(s).slice(0, 80)}`);
    return found;
  }
  const values = s.additionalProperties;
  const typedValues = typeof values === "object" && values !== null && Object.keys(values).some((key) => !ANNOTATIONS.has(key));
  if (s.type === "object" || "properties" in s) {
    if (!s.properties && !typedValues) found.push(`${where} — object without declared properties`);
    if (closed && s.properties && values !== false) found.push(`${where} — response object open to undeclared properties`);
    for (const [name, property] of Object.entries((s.properties ?? {}) as Schema)) loosenessOf(property, `${where}.${name}`, closed, found);
    if (typeof values === "object" && values !== null) loosenessOf(values, `${where}{}`, closed, found);
  }
  if (s.items) loosenessOf(s.items, `${where}[]`, closed, found);
  for (const key of ["anyOf", "oneOf", "allOf"]) for (const [i, branch] of ((s[key] ?? []) as unknown[]).entries()) loosenessOf(branch, `${where}|${i}`, closed, found);
  return found;
}

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
        // The probes answer 503 with their own bodies (what is down or dead), not an error.
        if (Number(status) >= 400 && path !== "/readyz" && path !== "/healthz") expect(response.content?.["application/json"]?.schema, `${method} ${path} ${status}`).toEqual({ $ref: "#/components/schemas/Error" });
      }
    }
  });

  it("types every request and response schema exactly, open only where the payload is open by design", () => {
    const found: string[] = [];
    for (const [path, method, op] of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        const json = response.content?.["application/json"]?.schema;
        if (json) loosenessOf(json, `${method} ${path} ${status} `, true, found);
      }
      for (const [type, body] of Object.entries(op.requestBody?.content ?? {})) if (type === "application/json") loosenessOf(body.schema, `${method} ${path} body `, false, found);
      for (const parameter of op.parameters ?? []) loosenessOf(parameter.schema, `${method} ${path} ${parameter.name} `, false, found);
    }
    for (const [name, schema] of Object.entries(doc.components.schemas)) loosenessOf(schema, `#/components/schemas/${name} `, true, found);
    const placeOf = (finding: string) => finding.split(" — ")[0];
    expect(found.filter((finding) => !(placeOf(finding) in OPEN_BY_DESIGN))).toEqual([]);
    // The allow-list holds no place that is no longer open (it shrinks with the API).
    const open = new Set(found.map(placeOf));
    expect(Object.keys(OPEN_BY_DESIGN).filter((place) => !open.has(place))).toEqual([]);
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
