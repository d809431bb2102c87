// Every input from outside is hostile until checked: each bad frame or token gets its error code
// or close code, changes nothing, and the server keeps serving everyone else.

import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { CloseCode, ErrorCode, FrameType, PROTOCOL_VERSION } from "../protocol/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let bystander: RawClient;

beforeAll(async () => {
  server = await startTestServer({
    env: { PARLEY_MAX_FRAME_BYTES: "8192", PARLEY_MAX_UPDATE_BYTES: "4096", PARLEY_AUTH_TIMEOUT_MS: "300" },
  });
  bystander = await RawClient.authenticated(server.url, await server.token({ user: "b", org: "o", conversations: { calm: "writer" } }));
  bystander.control({ type: "join", conversation: "calm" });
  await bystander.waitForControl("joined");
});

afterAll(async () => {
  // After every hostile case, an ordinary client is still served.
  const update = (() => {
    const doc = new Y.Doc();
    let u: Uint8Array = new Uint8Array();
    doc.on("update", (x: Uint8Array) => {
      u = x;
    });
    doc.getText("notes").insert(0, "still here");
    return u;
  })();
  bystander.doc("calm", { type: "update", update });
  await bystander.waitForControl("ack");
  bystander.close();
  await server.cleanup();
});

function unsignedToken(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${enc({ alg: "none", typ: "at+jwt" })}.${enc(claims)}.`;
}

async function authWith(token: string): Promise<RawClient> {
  const client = await RawClient.connect(server.url);
  client.control({ type: "auth", token, protocol: PROTOCOL_VERSION });
  return client;
}

describe("hostile input", () => {
  it("closes on a malformed frame with a protocol-violation code", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { x: "writer" } }));
    client.raw(new Uint8Array([FrameType.Control, 0xc1, 0xff, 0x00]));
    const error = await client.waitForControl("error");
    expect(error.code).toBe(ErrorCode.MalformedFrame);
    expect(await client.closed()).toBe(CloseCode.ProtocolViolation);
  });

  it("closes on a truncated document envelope", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { x: "writer" } }));
    client.raw(new Uint8Array([FrameType.Doc, 5, 0x61]));
    expect(await client.closed()).toBe(CloseCode.ProtocolViolation);
  });

  it("refuses an undecodable update without closing, and stores nothing", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { junk: "writer" } }));
    client.control({ type: "join", conversation: "junk" });
    await client.waitForControl("joined");
    client.doc("junk", { type: "update", update: new Uint8Array([9, 200, 200, 200, 1, 2, 3]) });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.InvalidUpdate, request: "write" });
    expect(await server.server.store.readEntries("junk", 0, 10)).toEqual([]);
    client.close();
  });

  it("refuses an oversized update with an error frame", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { big: "writer" } }));
    client.control({ type: "join", conversation: "big" });
    await client.waitForControl("joined");
    const doc = new Y.Doc();
    let update: Uint8Array = new Uint8Array();
    doc.on("update", (u: Uint8Array) => {
      update = u;
    });
    doc.getText("notes").insert(0, "x".repeat(6000));
    client.doc("big", { type: "update", update });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.UpdateTooLarge });
    expect(await server.server.store.readEntries("big", 0, 10)).toEqual([]);
    client.close();
  });

  it("closes on an oversized frame with 4413", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { x: "writer" } }));
    client.raw(new Uint8Array(10_000));
    expect(await client.closed()).toBe(CloseCode.FrameTooLarge);
  });

  it("closes when the first frame is not auth", async () => {
    const client = await RawClient.connect(server.url);
    client.control({ type: "join", conversation: "calm" });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.NotAuthenticated });
    expect(await client.closed()).toBe(CloseCode.ProtocolViolation);
  });

  it("closes a socket that does not authenticate in time", async () => {
    const client = await RawClient.connect(server.url);
    expect(await client.closed(3000)).toBe(CloseCode.AuthTimeout);
  });

  it("rejects an expired token", async () => {
    const token = await server.token({ user: "u", org: "o", conversations: { x: "writer" }, ttlSeconds: -10 });
    const client = await authWith(token);
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.TokenExpired, request: "auth" });
    expect(await client.closed()).toBe(CloseCode.AuthFailed);
  });

  it("rejects a token signed by another key", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const forged = await new SignJWT({ org: "o", conv: { calm: "writer" } })
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: server.server.keys.signingKid })
      .setIssuer("parley")
      .setAudience("parley")
      .setSubject("eve")
      .setJti("j")
      .setExpirationTime("1h")
      .sign(privateKey);
    const client = await authWith(forged);
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.InvalidToken });
    expect(await client.closed()).toBe(CloseCode.AuthFailed);
  });

  it("rejects an alg:none token", async () => {
    const client = await authWith(
      unsignedToken({ sub: "eve", org: "o", conv: { calm: "writer" }, iss: "parley", aud: "parley", jti: "j", exp: 9999999999 }),
    );
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.InvalidToken });
    expect(await client.closed()).toBe(CloseCode.AuthFailed);
  });

  it("rejects an HMAC token keyed with the public key", async () => {
    const secret = server.server.keys.verifyKey.export({ format: "der", type: "spki" });
    const token = await new SignJWT({ org: "o", conv: { calm: "writer" } })
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt" })
      .setIssuer("parley")
      .setAudience("parley")
      .setSubject("eve")
      .setJti("j")
      .setExpirationTime("1h")
      .sign(new Uint8Array(secret));
    const client = await authWith(token);
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.InvalidToken });
    expect(await client.closed()).toBe(CloseCode.AuthFailed);
  });

  it("refuses a conversation the token does not cover, keeping the socket", async () => {
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { mine: "writer" } }));
    client.control({ type: "join", conversation: "calm" });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.Forbidden, conversation: "calm", request: "join" });
    client.doc("calm", { type: "update", update: new Uint8Array([0, 0]) });
    expect(await client.waitForControl("error", (m) => m.request === "write")).toMatchObject({ code: ErrorCode.NotJoined });
    client.control({ type: "join", conversation: "mine" });
    await client.waitForControl("joined");
    expect(client.closeCode).toBeNull();
    client.close();
  });

  it("rejects an unsupported protocol version", async () => {
    const client = await RawClient.connect(server.url);
    client.control({ type: "auth", token: "x", protocol: 999 });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.UnsupportedVersion });
    expect(await client.closed()).toBe(CloseCode.UnsupportedVersion);
  });

  it("closes on a text frame", async () => {
    const client = await RawClient.connect(server.url);
    client.raw("hello");
    expect(await client.closed()).toBe(CloseCode.ProtocolViolation);
  });
});
