// Every identity that should get in, on every route: a signed-in person's access token, an API
// key within its scopes, and a host application's own tokens (verified against its JWKS, served
// here over real HTTP, with key rotation) open /yjs and /ws with the role they have; development
// tokens keep working on sockets and get a clear answer on HTTP.

import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { ErrorCode } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";

const HOST_ISSUER = "https://host.example";
const HOST_AUDIENCE = "parley-at-host";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A host application's identity provider: its keys and the JWKS it serves over HTTP. */
class HostIdp {
  published: JWK[] = [];
  fetches = 0;
  private http: Server | null = null;
  url = "";

  async start(): Promise<void> {
    this.http = createServer((_req, res) => {
      this.fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.published }));
    });
    await new Promise<void>((resolve) => this.http?.listen(0, "127.0.0.1", resolve));
    const address = this.http.address();
    if (!address || typeof address === "string") throw new Error("no address");
    this.url = `http://127.0.0.1:${address.port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.http?.close(resolve));
  }
}

async function keyPair(alg: string, kid: string): Promise<{ pair: KeyPair; jwk: JWK; kid: string; alg: string }> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { pair, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" }, kid, alg };
}

function hostToken(
  key: { pair: KeyPair; kid: string; alg: string },
  claims: { sub: string; org: string },
  overrides: { iss?: string; aud?: string; exp?: number } = {},
): Promise<string> {
  return new SignJWT({ org: claims.org })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuer(overrides.iss ?? HOST_ISSUER)
    .setAudience(overrides.aud ?? HOST_AUDIENCE)
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(overrides.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(key.pair.privateKey);
}

/** A bare y-websocket-dialect socket: sends one update and waits for the server's answer to it. */
async function yjsWrite(url: string, update: Uint8Array): Promise<{ denied: string | null }> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const denied = new Promise<string | null>((resolve, reject) => {
    ws.on("message", (data: ArrayBuffer) => {
      const decoder = decoding.createDecoder(new Uint8Array(data));
      if (decoding.readVarUint(decoder) === 2) {
        decoding.readVarUint(decoder);
        resolve(decoding.readVarString(decoder));
      }
    });
    ws.on("close", (code) => reject(new Error(`closed with ${code}`)));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0); // sync
  encoding.writeVarUint(encoder, 2); // update
  encoding.writeVarUint8Array(encoder, update);
  ws.send(encoding.toUint8Array(encoder));
  try {
    return { denied: await Promise.race([denied, new Promise<null>((resolve) => setTimeout(() => resolve(null), 1500))]) };
  } finally {
    ws.close();
  }
}

function textUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("notes").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

function provider(server: TestServer, conversation: string, token: string, doc = new Y.Doc()) {
  return new WebsocketProvider(server.yjsUrl, conversation, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
}

let server: TestServer;
let api: ReturnType<typeof apiClient>;
const idp = new HostIdp();
let rsaA: Awaited<ReturnType<typeof keyPair>>;
let helpdesk: SignedUp;
let supplier: SignedUp;
let conversation: string;

beforeAll(async () => {
  await idp.start();
  rsaA = await keyPair("RS256", "a");
  idp.published = [rsaA.jwk];
  server = await startTestServer({
    env: {
      PARLEY_PASSWORD_MIN_SCORE: "0",
      PARLEY_HOST_JWKS_URL: idp.url,
      PARLEY_HOST_TOKEN_ISSUER: HOST_ISSUER,
      PARLEY_HOST_TOKEN_AUDIENCE: HOST_AUDIENCE,
      PARLEY_HOST_TOKEN_ALGORITHMS: "RS256",
      PARLEY_HOST_JWKS_COOLDOWN_MS: "0",
    },
  });
  api = apiClient(server.httpUrl);
  helpdesk = await signUp(api, "hana@helpdesk.example", "Helpdesk");
  supplier = await signUp(api, "sven@supplier.example", "Supplier");
  const created = await api("POST", "/v1/conversations", {
    token: helpdesk.token,
    body: { title: "Broken boiler", participants: [{ organisation: supplier.orgId, role: "observer" }] },
  });
  expect(created.status).toBe(201);
  conversation = created.body.id as string;
});
afterAll(async () => {
  await server.cleanup();
  await idp.stop();
});

describe("a signed-in person's access token", () => {
  it("opens /yjs as the writer they are, with an unchanged y-websocket provider", async () => {
    const doc = new Y.Doc();
    const p = provider(server, conversation, helpdesk.token, doc);
    await vi.waitFor(() => expect(p.synced).toBe(true), { timeout: 5000 });
    doc.getText("notes").insert(0, "from the owner");
    await vi.waitFor(async () => {
      const entries = await server.server.store.readEntries(conversation, 0, 100);
      expect(entries.some((e) => e.user === helpdesk.userId && e.org === helpdesk.orgId)).toBe(true);
    });
    p.destroy();
  });

  it("opens /ws with the same role, and a participant observer organisation's person read-only", async () => {
    const owner = await RawClient.authenticated(server.url, helpdesk.token);
    owner.control({ type: "join", conversation });
    expect(await owner.waitForControl("joined")).toMatchObject({ role: "writer" });
    const observer = await RawClient.authenticated(server.url, supplier.token);
    observer.control({ type: "join", conversation });
    expect(await observer.waitForControl("joined")).toMatchObject({ role: "observer" });
    owner.close();
    observer.close();
    expect(await yjsWrite(`${server.yjsUrl}/${conversation}?token=${supplier.token}`, textUpdate("supplier edit"))).toMatchObject({
      denied: expect.stringContaining("observers"),
    });
    const entries = await server.server.store.readEntries(conversation, 0, 100);
    expect(entries.some((e) => e.user === supplier.userId)).toBe(false);
  });

  it("is refused on /yjs for a conversation the person may not see, with a code y-websocket does not retry", async () => {
    const outsider = await signUp(api, "otto@outside.example", "Outside");
    const p = provider(server, conversation, outsider.token);
    const closed = await new Promise<{ code: number }>((resolve) => p.once("closed", (event) => resolve(event)));
    expect(closed.code).toBe(4403);
    expect(p.shouldConnect).toBe(false);
    p.destroy();
  });
});

describe("an API key", () => {
  it("opens /yjs and /ws for its organisation's conversations as its scopes allow, and stops when revoked", async () => {
    const create = async (scopes: string[]) => {
      const response = await api("POST", `/v1/organisations/${helpdesk.orgId}/api-keys`, { token: helpdesk.token, body: { name: scopes.join(" "), scopes } });
      expect(response.status).toBe(201);
      return { id: response.body.id as string, key: response.body.key as string };
    };
    const writer = await create(["conversations:write"]);
    const reader = await create(["conversations:read"]);

    const socket = await RawClient.authenticated(server.url, writer.key);
    socket.control({ type: "join", conversation });
    expect(await socket.waitForControl("joined")).toMatchObject({ role: "writer" });
    socket.close();

    expect(await yjsWrite(`${server.yjsUrl}/${conversation}?token=${writer.key}`, textUpdate("from the ticketing system"))).toEqual({ denied: null });
    await vi.waitFor(async () => {
      const entries = await server.server.store.readEntries(conversation, 0, 100);
      expect(entries.some((e) => e.user === `key:${writer.id}`)).toBe(true);
    });
    expect(await yjsWrite(`${server.yjsUrl}/${conversation}?token=${reader.key}`, textUpdate("read-only key"))).toMatchObject({
      denied: expect.stringContaining("observers"),
    });

    // Revoking the key closes its open socket (re-checked every two seconds).
    const held = await RawClient.authenticated(server.url, reader.key);
    held.control({ type: "join", conversation });
    expect(await held.waitForControl("joined")).toMatchObject({ role: "observer" });
    expect((await api("DELETE", `/v1/organisations/${helpdesk.orgId}/api-keys/${reader.id}`, { token: helpdesk.token })).status).toBe(204);
    expect(await held.closed(10_000)).toBe(4403);
  });
});

describe("a host application's tokens", () => {
  it("are accepted on HTTP and sockets when signed by a key of its JWKS, for a member of the organisation", async () => {
    const token = await hostToken(rsaA, { sub: helpdesk.userId, org: helpdesk.orgId });
    const me = await api("GET", "/v1/me", { token });
    expect(me.status).toBe(200);
    expect(JSON.stringify(me.body)).toContain(helpdesk.userId);
    const socket = await RawClient.authenticated(server.url, token);
    socket.control({ type: "join", conversation });
    expect(await socket.waitForControl("joined")).toMatchObject({ role: "writer" });
    socket.close();
    expect(await yjsWrite(`${server.yjsUrl}/${conversation}?token=${token}`, textUpdate("via the host app"))).toEqual({ denied: null });
  });

  it("follow a key rotation without a restart: the new key is fetched, the removed one stops working", async () => {
    const rsaB = await keyPair("RS256", "b");
    const beforeA = await hostToken(rsaA, { sub: helpdesk.userId, org: helpdesk.orgId });
    expect((await api("GET", "/v1/me", { token: beforeA })).status).toBe(200);
    const fetchesBefore = idp.fetches;
    idp.published = [rsaB.jwk];
    const tokenB = await hostToken(rsaB, { sub: helpdesk.userId, org: helpdesk.orgId });
    expect((await api("GET", "/v1/me", { token: tokenB })).status).toBe(200);
    expect(idp.fetches).toBeGreaterThan(fetchesBefore);
    const afterA = await api("GET", "/v1/me", { token: await hostToken(rsaA, { sub: helpdesk.userId, org: helpdesk.orgId }) });
    expect(afterA.status).toBe(401);
    expect(afterA.body.error?.code).toBe(ErrorCode.InvalidToken);
    idp.published = [rsaA.jwk, rsaB.jwk];
  });

  it("are refused with another issuer, another audience, an algorithm not pinned, expired, or for a non-member", async () => {
    const claims = { sub: helpdesk.userId, org: helpdesk.orgId };
    const refused = async (token: string) => {
      const http = await api("GET", "/v1/me", { token });
      const socket = await RawClient.connect(server.url);
      socket.control({ type: "auth", token, protocol: 1 });
      const closeCode = await socket.closed();
      return { status: http.status, code: http.body.error?.code, message: http.body.error?.message, closeCode };
    };
    expect(await refused(await hostToken(rsaA, claims, { iss: "https://other.example" }))).toMatchObject({ status: 401, closeCode: 4401 });
    expect(await refused(await hostToken(rsaA, claims, { aud: "someone-else" }))).toMatchObject({ status: 401, closeCode: 4401 });
    expect(await refused(await hostToken(rsaA, claims, { exp: Math.floor(Date.now() / 1000) - 60 }))).toMatchObject({
      status: 401,
      code: ErrorCode.TokenExpired,
    });
    // An ES256 key the JWKS publishes is still refused: only RS256 is pinned.
    const ec = await keyPair("ES256", "e");
    idp.published = [rsaA.jwk, ec.jwk];
    expect(await refused(await hostToken(ec, claims))).toMatchObject({ status: 401, code: ErrorCode.InvalidToken });
    // HMAC keyed with anything (here: the RSA modulus text) is never accepted.
    const hmac = await new SignJWT({ org: claims.org })
      .setProtectedHeader({ alg: "HS256", kid: "a" })
      .setIssuer(HOST_ISSUER)
      .setAudience(HOST_AUDIENCE)
      .setSubject(claims.sub)
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(String(rsaA.jwk.n)));
    expect(await refused(hmac)).toMatchObject({ status: 401, code: ErrorCode.InvalidToken });
    // A person of another organisation, or nobody at all, does not get in by naming this one.
    const notMember = await refused(await hostToken(rsaA, { sub: supplier.userId, org: helpdesk.orgId }));
    expect(notMember).toMatchObject({ status: 401, code: ErrorCode.InvalidToken, message: expect.stringContaining("not (or no longer) a member") });
    expect(await refused(await hostToken(rsaA, { sub: "parley:system", org: helpdesk.orgId }))).toMatchObject({ status: 401 });
  });

  it("can come from a JWKS file that the server re-reads when it changes", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "parley-jwks-"));
    const jwksPath = path.join(dir, "host-jwks.json");
    const fileServer = await startTestServer({
      env: { PARLEY_PASSWORD_MIN_SCORE: "0", PARLEY_HOST_JWKS_FILE: jwksPath, PARLEY_HOST_TOKEN_ISSUER: HOST_ISSUER, PARLEY_HOST_TOKEN_AUDIENCE: HOST_AUDIENCE },
    });
    try {
      // The file does not exist yet: every host token is refused, nothing crashes.
      const fileApi = apiClient(fileServer.httpUrl);
      const owner = await signUp(fileApi, "fay@file.example", "File Org");
      const token = await hostToken(rsaA, { sub: owner.userId, org: owner.orgId });
      expect((await fileApi("GET", "/v1/me", { token })).status).toBe(401);
      await writeFile(jwksPath, JSON.stringify({ keys: [rsaA.jwk] }));
      expect((await fileApi("GET", "/v1/me", { token })).status).toBe(200);
      // Rotated on disk: the next request uses the new file.
      const rsaC = await keyPair("RS256", "c");
      await writeFile(jwksPath, JSON.stringify({ keys: [rsaC.jwk, { ...rsaA.jwk, kid: "a-old-retired", n: rsaC.jwk.n }] }));
      expect((await fileApi("GET", "/v1/me", { token: await hostToken(rsaC, { sub: owner.userId, org: owner.orgId }) })).status).toBe(200);
      expect((await fileApi("GET", "/v1/me", { token })).status).toBe(401);
    } finally {
      await fileServer.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("development tokens", () => {
  it("keep opening /yjs and /ws, and get the real reason on HTTP", async () => {
    const token = await server.token({ user: "dev", org: "dev-org", conversations: { scratch: "writer" } });
    const socket = await RawClient.authenticated(server.url, token);
    socket.control({ type: "join", conversation: "scratch" });
    expect(await socket.waitForControl("joined")).toMatchObject({ role: "writer" });
    socket.close();
    const http = await api("GET", "/v1/conversations", { token });
    expect(http.status).toBe(401);
    expect(http.body.error?.message).toContain("opens sockets only");
  });
});
