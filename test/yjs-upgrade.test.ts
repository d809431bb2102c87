// The y-websocket route's upgrade: the socket opens at once and its token is checked right after,
// so what a provider sends straight away waits in order and is handled once it is admitted, and
// nothing a refused socket sent is ever handled. The upgrade no longer happens after an await:
// in this uWS build an upgrade from res.cork() after an await could misread the new socket as an
// HTTP connection to close (uNetworking/uWebSockets#1929), and clients saw 1006 before their
// first message now and then under load (operations.test.ts hung on it; the bench lost a client).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { decodeDocMessage, type DocMessage, encodeDocMessage } from "../protocol/index.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitUntil } from "./helpers/wait.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_MAX_CONNECTIONS_PER_ADDRESS: "1000" } });
});
afterAll(async () => {
  await server.cleanup();
});

/** A raw y-websocket client that records what it receives and how it ends. */
function open(url: string, onOpen: (socket: WebSocket) => void = () => {}) {
  const socket = new WebSocket(url);
  const received: DocMessage[] = [];
  const denied: string[] = [];
  let closed: { code: number; reason: string } | null = null;
  socket.binaryType = "nodebuffer";
  socket.on("open", () => onOpen(socket));
  socket.on("message", (data: Buffer) => {
    const bytes = new Uint8Array(data);
    if (bytes[0] === 2) denied.push(Buffer.from(bytes.subarray(3)).toString());
    else received.push(decodeDocMessage(bytes));
  });
  socket.on("close", (code, reason) => {
    closed = { code, reason: reason.toString() };
  });
  return { socket, received, denied, closed: () => closed };
}

/** The conversation's text as a writer syncing from nothing sees it. */
async function textOf(conversation: string): Promise<string> {
  const token = await server.token({ user: "reader-check", org: "o", conversations: { [conversation]: "writer" } });
  const doc = new Y.Doc();
  const client = open(`${server.yjsUrl}/${conversation}?token=${token}`, (s) => s.send(encodeDocMessage({ type: "sync-step1", stateVector: Y.encodeStateVector(doc) })));
  await waitUntil(() => client.received.some((m) => m.type === "sync-step2"), { what: "the sync step 2" });
  for (const m of client.received) if (m.type === "sync-step2") Y.applyUpdate(doc, m.update);
  client.socket.close();
  return doc.getText("notes").toString();
}

function editOf(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("notes").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

describe("y-websocket upgrade", () => {
  it("handles what a provider sends before its token is checked, in order, once admitted", async () => {
    const token = await server.token({ user: "early", org: "o", conversations: { early: "writer" } });
    // Sent in the same turn as the open: the server cannot have checked the token yet.
    const client = open(`${server.yjsUrl}/early?token=${token}`, (s) => {
      s.send(encodeDocMessage({ type: "sync-step1", stateVector: Y.encodeStateVector(new Y.Doc()) }));
      s.send(encodeDocMessage({ type: "update", update: editOf("sent before admission") }));
    });
    await waitUntil(() => client.received.some((m) => m.type === "sync-step2") && client.received.some((m) => m.type === "sync-step1"), { what: "both sync steps" });
    await waitUntil(async () => (await textOf("early")) === "sent before admission", { what: "the early edit, durable" });
    expect(client.closed()).toBeNull();
    expect(client.denied).toEqual([]);
    client.socket.close();
  });

  it("never handles what a refused socket sent before its token was checked", async () => {
    const edit = encodeDocMessage({ type: "update", update: editOf("forged") });
    const badToken = open(`${server.yjsUrl}/guarded?token=not-a-token`, (s) => s.send(edit));
    const noGrant = open(`${server.yjsUrl}/guarded?token=${await server.token({ user: "stranger", org: "x", conversations: { other: "writer" } })}`, (s) => s.send(edit));
    const observer = open(`${server.yjsUrl}/guarded?token=${await server.token({ user: "watcher", org: "o", conversations: { guarded: "observer" } })}`, (s) => s.send(edit));
    await waitUntil(() => badToken.closed() !== null && noGrant.closed() !== null && observer.denied.length > 0, { what: "the refusals" });
    expect(badToken.closed()).toMatchObject({ code: 4401 });
    expect(badToken.denied).toHaveLength(1);
    expect(noGrant.closed()).toMatchObject({ code: 4403 });
    expect(await textOf("guarded")).toBe("");
    observer.socket.close();
  });

  it("gives every one of many concurrent opens its first message", async () => {
    const token = await server.token({ user: "many", org: "o", conversations: { crowd: "writer" } });
    let dropped = 0;
    const once = async () => {
      const client = open(`${server.yjsUrl}/crowd?token=${token}`);
      await waitUntil(() => client.received.length > 0 || client.closed() !== null, { what: "a first message or a close", timeout: 20_000 });
      if (client.received.length === 0) dropped++;
      client.socket.close();
    };
    for (let round = 0; round < 10; round++) await Promise.all(Array.from({ length: 20 }, once));
    expect(dropped).toBe(0);
  });
});
