// The client address every entry point uses (HTTP, SSE, /ws, /yjs): the rightmost
// X-Forwarded-For hop that is not a trusted proxy, or the socket peer when no proxy is trusted.
// Property runs: PARLEY_PROPERTY_RUNS (default 300), seed PARLEY_PROPERTY_SEED (printed on failure).

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ErrorCode, PROTOCOL_VERSION } from "../protocol/index.ts";
import { clientAddress, parseProxyTrust, UNKNOWN_ADDRESS } from "../server/platform/client-address.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";

const runs = Number(process.env.PARLEY_PROPERTY_RUNS ?? 300);
const seed = process.env.PARLEY_PROPERTY_SEED ? Number(process.env.PARLEY_PROPERTY_SEED) : undefined;
const settings = { numRuns: runs, seed };

const PROXIES = "10.0.0.0/8, fd00::/8, 127.0.0.1";
const trust = parseProxyTrust(PROXIES);
const proxyV4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`);
const proxyV6 = fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }).map((g) => `fd${(g[0] & 0xff).toString(16).padStart(2, "0")}:${g.slice(1).map((x) => x.toString(16)).join(":")}:1`);
const proxy = fc.oneof(proxyV4, proxyV6, fc.constant("127.0.0.1"));
/** A public client address (outside every trusted range). */
const client = fc.oneof(
  fc.ipV4().filter((a) => !a.startsWith("10.") && a !== "127.0.0.1"),
  fc.ipV6().filter((a) => !/^fd/i.test(a) && !/\./.test(a)),
);
/** Whatever a client writes into X-Forwarded-For itself. */
const forged = fc.oneof(fc.ipV4(), fc.ipV6(), proxy, fc.string({ maxLength: 30 }), fc.constant("unknown"), fc.constant("_hidden"));

describe("client address", () => {
  it("is the socket peer when no proxy is trusted, whatever X-Forwarded-For says", () => {
    fc.assert(
      fc.property(client, fc.array(forged, { maxLength: 6 }), (peer, hops) => {
        expect(clientAddress(peer, hops.join(","), parseProxyTrust("false"))).toBe(clientAddress(peer, "", parseProxyTrust("false")));
      }),
      settings,
    );
  });

  it("is the rightmost hop that is not a trusted proxy, whatever the client put left of it", () => {
    fc.assert(
      fc.property(fc.array(forged, { maxLength: 6 }), client, fc.array(proxy, { minLength: 1, maxLength: 4 }), (claims, real, proxies) => {
        const peer = proxies[proxies.length - 1];
        const header = [...claims, real, ...proxies.slice(0, -1)].join(", ");
        expect(clientAddress(peer, header, trust)).toBe(clientAddress(real, "", parseProxyTrust("false")));
      }),
      settings,
    );
  });

  it("with a hop count, is the hop that many from the right", () => {
    fc.assert(
      fc.property(fc.array(forged, { maxLength: 6 }), client, fc.array(client, { minLength: 0, maxLength: 3 }), client, (claims, real, inner, peer) => {
        const count = inner.length + 1;
        const header = [...claims, real, ...inner].join(",");
        expect(clientAddress(peer, header, parseProxyTrust(String(count)))).toBe(clientAddress(real, "", parseProxyTrust("false")));
      }),
      settings,
    );
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", () => {
    fc.assert(
      fc.property(client, fc.array(forged, { maxLength: 6 }), (peer, hops) => {
        expect(clientAddress(peer, hops.join(","), trust)).toBe(clientAddress(peer, "", parseProxyTrust("false")));
      }),
      settings,
    );
  });

  it("takes the rightmost hop, not the client's own leftmost claim", () => {
    expect(clientAddress("127.0.0.1", "198.51.100.7, 203.0.113.9", parseProxyTrust("true"))).toBe("203.0.113.9");
    expect(clientAddress("127.0.0.1", "198.51.100.7, 203.0.113.9", trust)).toBe("203.0.113.9");
    expect(clientAddress("::ffff:127.0.0.1", "[2001:db8::7]:4711", trust)).toBe("2001:db8::7");
    expect(clientAddress("127.0.0.1", "203.0.113.9:8080", trust)).toBe("203.0.113.9");
    expect(clientAddress("127.0.0.1", "198.51.100.7, not-an-address", trust)).toBe(UNKNOWN_ADDRESS);
    expect(clientAddress("127.0.0.1", "0x7f.1", trust)).toBe(UNKNOWN_ADDRESS);
    expect(clientAddress("0000:0000:0000:0000:0000:ffff:7f00:0001", "", trust)).toBe("127.0.0.1");
  });

  it("refuses a setting it cannot read", () => {
    expect(() => parseProxyTrust("10.0.0.0/33")).toThrow(/PARLEY_TRUST_PROXY/);
    expect(() => parseProxyTrust("proxy.internal")).toThrow(/PARLEY_TRUST_PROXY/);
    expect(parseProxyTrust("true")).toEqual({ kind: "hops", count: 1 });
    expect(parseProxyTrust("false")).toEqual({ kind: "none" });
  });
});

describe("client address behind a proxy (PARLEY_TRUST_PROXY=true: one proxy)", () => {
  let server: TestServer;
  let api: ReturnType<typeof apiClient>;
  let owner: SignedUp;
  const office = "198.51.100.7";
  const fromOffice = { "x-forwarded-for": office };
  /** The client claims the office address; the proxy appends where it really came from. */
  const forged = { "x-forwarded-for": `${office}, 203.0.113.9` };

  beforeAll(async () => {
    server = await startTestServer({ env: { PARLEY_TRUST_PROXY: "true" } });
    api = apiClient(server.httpUrl);
    owner = await signUp(api, "ivy@proxied.example", "Proxied");
    const set = await api("PATCH", `/v1/organisations/${owner.orgId}`, { token: owner.token, headers: fromOffice, body: { ipAllowlist: ["198.51.100.0/24"] } });
    expect(set.status).toBe(200);
  });
  afterAll(() => server.cleanup());

  it("HTTP: a forged leftmost X-Forwarded-For does not pass the IP allowlist", async () => {
    expect((await api("GET", "/v1/me", { token: owner.token, headers: fromOffice })).status).toBe(200);
    const forgedCall = await api("GET", "/v1/me", { token: owner.token, headers: forged });
    expect(forgedCall.status).toBe(403);
    expect(forgedCall.body.error?.code).toBe(ErrorCode.IpNotAllowed);
  });

  it("/ws: the socket's address comes from the proxy's hop, like HTTP's", async () => {
    const good = await RawClient.connect(server.url, fromOffice);
    good.control({ type: "auth", token: owner.token, protocol: PROTOCOL_VERSION });
    await good.waitForControl("auth-ok");
    good.close();
    const bad = await RawClient.connect(server.url, forged);
    bad.control({ type: "auth", token: owner.token, protocol: PROTOCOL_VERSION });
    expect(await bad.waitForControl("error")).toMatchObject({ code: ErrorCode.IpNotAllowed });
    bad.close();
  });

  it("/yjs: the allowlist holds for the y-websocket route too", async () => {
    const token = await server.token({ user: owner.userId, org: owner.orgId, conversations: { "conv-proxied": "writer" } });
    // Accepted: the server starts syncing (a y-protocols sync message, first byte 0). Refused: the
    // upgrade is closed at once with a 44xx code, which y-websocket does not retry.
    const open = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(`${server.yjsUrl}/conv-proxied?token=${token}`, { headers });
        socket.on("message", (data: Buffer) => {
          if (data[0] !== 0) return;
          socket.close();
          resolve(101);
        });
        socket.once("close", (code) => resolve(code));
        socket.once("error", () => resolve(-1));
      });
    expect(await open(fromOffice)).toBe(101);
    expect(await open(forged)).toBe(4401);
  });

  it("SSE: the event stream checks the same address", async () => {
    const key = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, headers: fromOffice, body: { name: "helpdesk", scopes: ["conversations:read"] } });
    expect(key.status).toBe(201);
    const stream = await fetch(`${server.httpUrl}/v1/events/stream`, { headers: { authorization: `Bearer ${key.body.key as string}`, ...forged } });
    expect(stream.status).toBe(403);
    await stream.body?.cancel();
  });

  it("the per-address sign-in throttle is not evaded by changing the forged hop", async () => {
    let last = 0;
    for (let i = 0; i < 11; i++) {
      const headers = { "x-forwarded-for": `192.0.2.${i + 1}, 203.0.113.77` };
      const attempt = await api("POST", "/v1/auth/login", { headers, body: { email: `nobody${i}@proxied.example`, password: "wrong-password-123" } });
      last = attempt.status;
    }
    expect(last).toBe(429);
  });

  it("counts an IPv6 client's sign-in failures per /64, not per address it invents", async () => {
    let last = 0;
    for (let i = 0; i < 11; i++) {
      const headers = { "x-forwarded-for": `2001:db8:77:1::${(i + 1).toString(16)}` };
      const attempt = await api("POST", "/v1/auth/login", { headers, body: { email: `v6-${i}@proxied.example`, password: "wrong-password-123" } });
      last = attempt.status;
    }
    expect(last).toBe(429);
  });
});
