// A connection's life after authentication: renewing its token (and losing grants), expiring,
// being too slow to read, and the server shutting down gracefully around it.

import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { CloseCode, ErrorCode, PROTOCOL_VERSION } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { signUpWithKey } from "./helpers/partner-orgs.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer | null = null;
afterEach(async () => {
  await server?.cleanup();
  server = null;
});

function textUpdate(doc: Y.Doc, text: string): Uint8Array {
  let update: Uint8Array = new Uint8Array();
  doc.once("update", (u: Uint8Array) => {
    update = u;
  });
  doc.getText("notes").insert(0, text);
  return update;
}

describe("session lifecycle", () => {
  it("renews a token on the same socket and leaves conversations the new token drops", async () => {
    server = await startTestServer();
    const first = await server.token({ user: "u", org: "o", conversations: { a: "writer", b: "writer" } });
    const client = await RawClient.authenticated(server.url, first);
    client.control({ type: "join", conversation: "a" });
    client.control({ type: "join", conversation: "b" });
    await client.waitForControl("joined", (m) => m.conversation === "b");
    const renewed = await server.token({ user: "u", org: "o", conversations: { a: "writer" } });
    client.control({ type: "auth", token: renewed, protocol: PROTOCOL_VERSION });
    const left = await client.waitForControl("left", (m) => m.conversation === "b");
    expect(left.code).toBe(ErrorCode.Forbidden);
    client.doc("b", { type: "update", update: textUpdate(new Y.Doc(), "x") });
    expect(await client.waitForControl("error", (m) => m.request === "write")).toMatchObject({ code: ErrorCode.NotJoined });
    client.close();
  });

  it("keeps the conversations a renewed sign-in token or API key still reaches (their access is the directory's, not the token's)", async () => {
    server = await startTestServer();
    const api = apiClient(server.httpUrl);
    const org = await signUpWithKey(api, "rena@renewals.example", "Renewals Ltd");
    const ids: string[] = [];
    for (const title of ["Pump 1", "Pump 2"]) {
      const created = await api("POST", "/v1/conversations", { token: org.token, body: { title } });
      expect(created.status).toBe(201);
      ids.push(created.body.id as string);
    }
    const [first, second] = ids;
    for (const credential of [org.token, org.key]) {
      const client = await RawClient.authenticated(server.url, credential);
      client.control({ type: "join", conversation: first });
      await client.waitForControl("joined", (m) => m.conversation === first);
      const before = client.frames.length;
      client.control({ type: "auth", token: credential, protocol: PROTOCOL_VERSION });
      await client.waitFor((f) => client.frames.indexOf(f) >= before && f.kind === "control" && f.message.type === "auth-ok");
      // Joined after the renewal asked for its re-checks, so their answers have come by the time this one is joined.
      client.control({ type: "join", conversation: second });
      await client.waitForControl("joined", (m) => m.conversation === second);
      client.doc(first, { type: "update", update: textUpdate(new Y.Doc(), "still here") });
      expect(await client.waitForControl("ack", (m) => m.conversation === first)).toMatchObject({ conversation: first });
      expect(client.frames.filter((f) => f.kind === "control" && f.message.type === "left")).toEqual([]);
      client.close();
    }
  });

  it("refuses a renewal that switches identity", async () => {
    server = await startTestServer();
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { a: "writer" } }));
    client.control({ type: "auth", token: await server.token({ user: "other", org: "o", conversations: {} }), protocol: PROTOCOL_VERSION });
    expect(await client.waitForControl("error")).toMatchObject({ code: ErrorCode.IdentityChanged });
    expect(await client.closed()).toBe(CloseCode.AuthFailed);
  });

  it("closes a session whose token expires without renewal, with a reconnect code", async () => {
    server = await startTestServer();
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { a: "writer" }, ttlSeconds: 1 }));
    expect(await client.closed(5000)).toBe(CloseCode.SessionExpired);
  });

  it("commits accepted writes, then closes sockets with 1012 on shutdown", async () => {
    server = await startTestServer();
    const client = await RawClient.authenticated(server.url, await server.token({ user: "u", org: "o", conversations: { a: "writer" } }));
    client.control({ type: "join", conversation: "a" });
    await client.waitForControl("joined");
    const doc = new Y.Doc();
    for (let i = 0; i < 50; i++) client.doc("a", { type: "update", update: textUpdate(doc, `${i}`) });
    await client.waitForControl("ack", (m) => m.seq === 1);
    await server.stop();
    expect(await client.closed()).toBe(CloseCode.ServiceRestart);
    expect(client.frames.some((f) => f.kind === "control" && f.message.type === "notice")).toBe(true);
    // What was acknowledged is exactly what was stored: nothing acked lost, nothing stored unacked.
    const acks = client.frames.filter((f) => f.kind === "control" && f.message.type === "ack").length;
    await server.restart();
    expect((await server.server.store.loadDocument("a")).headSeq).toBe(acks);
  });

  it("stops answering HTTP on kept-alive connections once shut down", async () => {
    server = await startTestServer();
    // fetch keeps the connection alive: the second request would reuse it.
    expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);
    await server.stop();
    await expect(fetch(`${server.httpUrl}/healthz`)).rejects.toThrow();
  });

  it("disconnects a consumer that stops reading with 4508 instead of buffering without bound", async () => {
    // 24 million characters in one document: above the default item limit, which is not under test here.
    server = await startTestServer({ env: { PARLEY_MAX_BACKPRESSURE_BYTES: "65536", PARLEY_MAX_FRAMES_PER_SECOND: "100000", PARLEY_MAX_DOC_ITEMS: "100000000" } });
    const token = await server.token({ user: "u", org: "o", conversations: { flood: "writer" } });
    const writer = await RawClient.authenticated(server.url, token);
    const reader = await RawClient.authenticated(server.url, token);
    for (const c of [writer, reader]) c.control({ type: "join", conversation: "flood" });
    await reader.waitForControl("joined");
    await writer.waitForControl("joined");
    // The reader's TCP socket stops reading: the kernel buffers fill, then the server's.
    (reader.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const doc = new Y.Doc();
    const chunk = "x".repeat(16_000);
    for (let i = 0; i < 1500; i++) writer.doc("flood", { type: "update", update: textUpdate(doc, chunk) });
    await writer.waitForControl("ack", (m) => (m.seq as number) >= 1500, 20_000);
    expect(server.server.hub.sessions.size).toBe(1);
    // Reading again, the reader gets what was buffered and then the documented close code.
    (reader.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await reader.closed(20_000)).toBe(CloseCode.SlowConsumer);
    writer.close();
  });
});
