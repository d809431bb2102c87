// Layered abuse limits: each layer (client address, account, API key, organisation, open
// connections per address) refuses its own noisy caller with 429, Retry-After and the usual error
// shape, while every other caller keeps being served; with Redis the limits hold across nodes.

import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { ErrorCode } from "../protocol/index.ts";
import { addressKey } from "../server/limits/address-key.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { requireRedis } from "./helpers/services.ts";
import { signUp } from "./helpers/sign-up.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function server(env: Record<string, string>): Promise<TestServer> {
  const started = await startTestServer({ env: { PARLEY_TRUST_PROXY: "true", ...env } });
  cleanups.push(() => started.cleanup());
  return started;
}

/** An API client whose requests come from `address` (X-Forwarded-For behind a trusted proxy). */
function from(httpUrl: string, address: string) {
  const call = apiClient(httpUrl);
  return (method: string, path: string, options: { token?: string; body?: unknown } = {}) =>
    call(method, path, { ...options, headers: { "x-forwarded-for": address } });
}

function expectRefused(response: ApiResponse, layer: RegExp): void {
  expect(response.status).toBe(429);
  expect(response.body.error?.code).toBe(ErrorCode.RateLimited);
  expect(response.body.error?.message).toMatch(layer);
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("HTTP request limits", () => {
  it("refuses an address past its budget while other addresses are served", async () => {
    const parley = await server({ PARLEY_RATE_LIMIT_ADDRESS: "5" });
    const noisy = from(parley.httpUrl, "203.0.113.7");
    const quiet = from(parley.httpUrl, "203.0.113.8");
    for (let i = 0; i < 5; i++) expect((await noisy("GET", "/.well-known/jwks.json")).status).toBe(200);
    expectRefused(await noisy("GET", "/.well-known/jwks.json"), /your address/);
    // Bad credentials cost the address's budget too: they are counted before credentials are read.
    expectRefused(await noisy("GET", "/v1/organisations/org_x", { token: "not-a-token" }), /your address/);
    expect((await quiet("GET", "/.well-known/jwks.json")).status).toBe(200);
    // Another address of the same IPv6 /64 shares a budget; another /64 does not.
    const v6a = from(parley.httpUrl, "2001:db8:1:2::1");
    const v6b = from(parley.httpUrl, "2001:db8:1:2:ffff::9");
    const v6other = from(parley.httpUrl, "2001:db8:1:3::1");
    for (let i = 0; i < 5; i++) expect((await (i % 2 ? v6a : v6b)("GET", "/.well-known/jwks.json")).status).toBe(200);
    expectRefused(await v6b("GET", "/.well-known/jwks.json"), /your address/);
    expect((await v6other("GET", "/.well-known/jwks.json")).status).toBe(200);
  });

  it("refuses an account, an API key and an organisation each past its own budget, serving the others", async () => {
    const parley = await server({ PARLEY_RATE_LIMIT_ACCOUNT: "4", PARLEY_RATE_LIMIT_API_KEY: "4", PARLEY_RATE_LIMIT_ORGANISATION: "10" });
    const ownerX = from(parley.httpUrl, "198.51.100.1");
    const ownerY = from(parley.httpUrl, "198.51.100.2");
    const x = await signUp(ownerX, "owner@x.test", "X");
    const y = await signUp(ownerY, "owner@y.test", "Y");
    const newKey = async () => {
      const created = await ownerX("POST", `/v1/organisations/${x.orgId}/api-keys`, { token: x.token, body: { name: "helpdesk", scopes: ["conversations:read"] } });
      expect(created.status).toBe(201);
      return created.body.key as string;
    };
    // Two requests of X's owner so far (account 2/4, organisation X 2/10).
    const [key1, key2] = [await newKey(), await newKey()];
    const orgX = `/v1/organisations/${x.orgId}`;

    // Account layer: X's owner is refused; Y's owner and X's API key are served.
    for (let i = 0; i < 2; i++) expect((await ownerX("GET", orgX, { token: x.token })).status).toBe(200);
    expectRefused(await ownerX("GET", orgX, { token: x.token }), /your account/);
    expect((await ownerY("GET", `/v1/organisations/${y.orgId}`, { token: y.token })).status).toBe(200);

    // API key layer (organisation X at 4/10): key 1 is refused after 4; key 2 is served.
    const partner1 = from(parley.httpUrl, "198.51.100.3");
    const partner2 = from(parley.httpUrl, "198.51.100.4");
    for (let i = 0; i < 4; i++) expect((await partner1("GET", orgX, { token: key1 })).status).toBe(200);
    expectRefused(await partner1("GET", orgX, { token: key1 }), /this API key/);

    // Organisation layer (X at 8/10): key 2 has budget left, its organisation soon has none.
    for (let i = 0; i < 2; i++) expect((await partner2("GET", orgX, { token: key2 })).status).toBe(200);
    expectRefused(await partner2("GET", orgX, { token: key2 }), /your organisation/);
    // Organisation Y is untouched by all of it.
    expect((await ownerY("GET", `/v1/organisations/${y.orgId}`, { token: y.token })).status).toBe(200);
  });

  it("holds across nodes on Redis: two nodes share one budget per address", async (context) => {
    const redisUrl = await requireRedis();
    if (!redisUrl) return context.skip();
    const env = { REDIS_URL: redisUrl, PARLEY_REDIS_PREFIX: `parley-test:${randomBytes(5).toString("hex")}:`, PARLEY_RATE_LIMIT_ADDRESS: "6" };
    const [a, b] = [await server(env), await server(env)];
    const onA = from(a.httpUrl, "192.0.2.50");
    const onB = from(b.httpUrl, "192.0.2.50");
    for (let i = 0; i < 3; i++) {
      expect((await onA("GET", "/.well-known/jwks.json")).status).toBe(200);
      expect((await onB("GET", "/.well-known/jwks.json")).status).toBe(200);
    }
    expectRefused(await onA("GET", "/.well-known/jwks.json"), /your address/);
    expectRefused(await onB("GET", "/.well-known/jwks.json"), /your address/);
    expect((await from(b.httpUrl, "192.0.2.51")("GET", "/.well-known/jwks.json")).status).toBe(200);
  });

  it("moves the sign-in throttle onto Redis: failures on one node lock the account on the other", async (context) => {
    const redisUrl = await requireRedis();
    if (!redisUrl) return context.skip();
    const env = { REDIS_URL: redisUrl, PARLEY_REDIS_PREFIX: `parley-test:${randomBytes(5).toString("hex")}:` };
    const [a, b] = [await server(env), await server(env)];
    const wrong = (url: string, i: number) =>
      from(url, `192.0.2.${100 + i}`)("POST", "/v1/auth/login", { body: { email: "nobody@x.test", password: "wrong-password-123" } });
    // Ten failures for one email, alternating nodes and addresses (so only the account key fills).
    for (let i = 0; i < 10; i++) expect((await wrong(i % 2 ? a.httpUrl : b.httpUrl, i)).status).toBe(401);
    const locked = await wrong(a.httpUrl, 20);
    expectRefused(locked, /failed sign-ins/);
    expectRefused(await wrong(b.httpUrl, 21), /failed sign-ins/);
  });
});

describe("open connections per address", () => {
  const opened = (url: string, localAddress: string, headers: Record<string, string> = {}) =>
    new Promise<{ socket: WebSocket } | { status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const socket = new WebSocket(url, { localAddress, headers });
      cleanups.push(async () => socket.terminate());
      socket.once("open", () => resolve({ socket }));
      socket.once("unexpected-response", (_request, response) => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers["retry-after"] }));
      socket.once("error", reject);
    });

  it("refuses a third socket from an address (on /ws and /yjs) and its event streams, serving other addresses", async () => {
    const parley = await server({ PARLEY_MAX_CONNECTIONS_PER_ADDRESS: "2", PARLEY_AUTH_TIMEOUT_MS: "600000" });
    const first = await opened(parley.url, "127.0.0.2");
    const second = await opened(parley.url, "127.0.0.2");
    expect("socket" in first && "socket" in second).toBe(true);
    expect(await opened(parley.url, "127.0.0.2")).toEqual({ status: 429, retryAfter: "5" });
    expect(await opened(`${parley.yjsUrl}/cnv_x?token=t`, "127.0.0.2")).toEqual({ status: 429, retryAfter: "5" });
    expect("socket" in (await opened(parley.url, "127.0.0.3"))).toBe(true);
    // A closed socket gives its slot back.
    if ("socket" in first) first.socket.close();
    await vi.waitFor(async () => expect("socket" in (await opened(parley.url, "127.0.0.2"))).toBe(true), { timeout: 10_000, interval: 50 });

    // Event streams count against the same cap (here by X-Forwarded-For: the router's address).
    const owner = await signUp(from(parley.httpUrl, "198.51.100.9"), "owner@sse.test", "SSE");
    const stream = (address: string) => {
      const abort = new AbortController();
      cleanups.push(async () => abort.abort());
      return fetch(`${parley.httpUrl}/v1/events/stream`, {
        headers: { authorization: `Bearer ${owner.token}`, "x-forwarded-for": address },
        signal: abort.signal,
      });
    };
    expect((await stream("198.51.100.20")).status).toBe(200);
    expect((await stream("198.51.100.20")).status).toBe(200);
    const third = await stream("198.51.100.20");
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("5");
    expect(((await third.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.RateLimited);
    expect((await stream("198.51.100.21")).status).toBe(200);
  });
});

describe("address keys", () => {
  it("never throws, stays short, and counts every address of an IPv6 /64 (and IPv4-mapped IPv6) together", () => {
    const seed = Number(process.env.FC_SEED ?? (process.env.CI === "true" ? CI_SEED : Date.now() % 1_000_000));
    const numRuns = Number(process.env.FC_RUNS ?? 300);
    try {
      fc.assert(
        fc.property(fc.string({ maxLength: 200 }), (text) => {
          expect(addressKey(text).length).toBeLessThanOrEqual(80);
        }),
        { seed, numRuns },
      );
      fc.assert(
        fc.property(fc.ipV6(), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }), (address, tail) => {
          const expanded = new URL(`http://[${address}]/`).hostname.slice(1, -1);
          const head = expanded.includes("::") ? null : expanded.split(":").slice(0, 4);
          if (!head) return;
          const sibling = [...head, ...tail.map((n) => n.toString(16))].join(":");
          expect(addressKey(sibling)).toBe(addressKey(address));
        }),
        { seed, numRuns },
      );
      fc.assert(
        fc.property(fc.ipV4(), (v4) => {
          expect(addressKey(`::ffff:${v4}`)).toBe(addressKey(v4));
        }),
        { seed, numRuns },
      );
    } catch (error) {
      throw new Error(`property failed with FC_SEED=${seed}: ${(error as Error).message}`);
    }
  });
});
