// One browser-origin policy for the HTTP API (CORS, preflight included) and both socket routes:
// by default any page may call and connect (credentials are bearer tokens); with
// PARLEY_ALLOWED_ORIGINS set, the same list decides everywhere, and refusals name the setting.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ErrorCode } from "../protocol/index.ts";
import { loadConfig } from "../server/platform/config.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const PAGE = "https://app.example";

function preflight(server: TestServer, origin: string, path = "/v1/conversations") {
  return fetch(`${server.httpUrl}${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
  });
}

/** The close code of a /yjs connection from `origin` (a refusal is a 44xx close, not an HTTP error). */
function yjsClose(server: TestServer, origin: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.yjsUrl}/room?token=x`, { headers: { origin } });
    ws.on("close", (code) => resolve(code));
  });
}

describe("by default", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.cleanup();
  });

  it("lets any page read responses: the preflight and the response agree", async () => {
    const pre = await preflight(server, PAGE);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(PAGE);
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const response = await fetch(`${server.httpUrl}/v1/me`, { headers: { origin: PAGE } });
    expect(response.status).toBe(401);
    expect(response.headers.get("access-control-allow-origin")).toBe(PAGE);
    expect(response.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
    const post = await fetch(`${server.httpUrl}/v1/conversations`, { method: "POST", headers: { origin: PAGE, "content-type": "application/json" }, body: "{}" });
    expect(post.headers.get("access-control-allow-origin")).toBe(PAGE);
  });

  it("lets any page open sockets", async () => {
    const socket = await RawClient.connect(server.url, { origin: PAGE });
    socket.close();
    expect(await yjsClose(server, PAGE)).toBe(4401); // past the Origin check: the token is what fails
  });
});

describe("with PARLEY_ALLOWED_ORIGINS", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { PARLEY_ALLOWED_ORIGINS: `${PAGE}, https://other.example` } });
  });
  afterAll(async () => {
    await server.cleanup();
  });

  it("allows the listed origins on HTTP and sockets alike", async () => {
    expect((await preflight(server, PAGE)).status).toBe(204);
    const response = await fetch(`${server.httpUrl}/v1/me`, { headers: { origin: PAGE } });
    expect(response.headers.get("access-control-allow-origin")).toBe(PAGE);
    (await RawClient.connect(server.url, { origin: PAGE })).close();
    expect(await yjsClose(server, PAGE)).toBe(4401);
  });

  it("refuses other origins everywhere, naming the origin and the setting", async () => {
    const evil = "https://evil.example";
    const pre = await preflight(server, evil);
    expect(pre.status).toBe(403);
    const preBody = (await pre.json()) as { error: { code: number; message: string } };
    expect(preBody.error.code).toBe(ErrorCode.OriginNotAllowed);
    expect(preBody.error.message).toContain("PARLEY_ALLOWED_ORIGINS");
    const response = await fetch(`${server.httpUrl}/v1/me`, { headers: { origin: evil } });
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    const body = (await response.json()) as { error: { code: number; message: string } };
    expect(body.error).toMatchObject({ code: ErrorCode.OriginNotAllowed, message: expect.stringContaining(evil) });
    await expect(RawClient.connect(server.url, { origin: evil })).rejects.toThrow(/403/);
    expect(await yjsClose(server, evil)).toBe(4403);
    // Non-browser clients send no Origin and are not affected.
    expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);
  });

  it("rejects a malformed list at start with the variable's name", () => {
    expect(() => loadConfig({ PARLEY_ALLOWED_ORIGINS: "https://app.example/" })).toThrow(/PARLEY_ALLOWED_ORIGINS/);
    expect(loadConfig({ PARLEY_ALLOWED_ORIGINS: "*" }).allowedOrigins).toEqual([]);
  });
});
