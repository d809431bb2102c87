// y-websocket compatibility: an unchanged WebsocketProvider edits a conversation alongside
// Parley-protocol clients, through the same write path, audit and permissions.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import type { DocFrame } from "../protocol/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitUntil } from "./helpers/wait.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.cleanup();
});

function provider(conversation: string, token: string, doc = new Y.Doc()) {
  return new WebsocketProvider(server.yjsUrl, conversation, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
}

describe("y-websocket compatibility", () => {
  it("converges a WebsocketProvider client and a Parley client on one conversation", async () => {
    const token = await server.token({ user: "yuki", org: "o", conversations: { shared: "writer" } });
    const yDoc = new Y.Doc();
    const yProvider = provider("shared", token, yDoc);
    await waitUntil(() => yProvider.synced);
    yDoc.getText("notes").insert(0, "from y-websocket. ");

    const parley = await RawClient.authenticated(server.url, await server.token({ user: "pia", org: "o", conversations: { shared: "writer" } }));
    parley.control({ type: "join", conversation: "shared" });
    await parley.waitForControl("joined");
    const pDoc = new Y.Doc();
    parley.doc("shared", { type: "sync-step1", stateVector: Y.encodeStateVector(pDoc) });
    const step2 = (await parley.waitFor((f) => f.kind === "doc" && f.message.type === "sync-step2")) as DocFrame;
    Y.applyUpdate(pDoc, (step2.message as { update: Uint8Array }).update);
    await waitUntil(() => {
      for (const f of parley.frames) {
        if (f.kind === "doc" && f.message.type === "update") Y.applyUpdate(pDoc, f.message.update);
      }
      return pDoc.getText("notes").toString().includes("from y-websocket");
    });

    // The Parley client writes; the provider sees it.
    let update: Uint8Array = new Uint8Array();
    pDoc.once("update", (u: Uint8Array) => {
      update = u;
    });
    pDoc.getText("notes").insert(pDoc.getText("notes").length, "from parley.");
    parley.doc("shared", { type: "update", update });
    await parley.waitForControl("ack");
    await waitUntil(() => yDoc.getText("notes").toString() === pDoc.getText("notes").toString());

    // Both writes are in the audit log, attributed to their authors.
    const entries = await server.server.store.readEntries("shared", 0, 100);
    expect(new Set(entries.map((e) => e.user))).toEqual(new Set(["yuki", "pia"]));
    yProvider.destroy();
    parley.close();
  });

  it("converges a WebsocketProvider client and an SDK client editing concurrently", async () => {
    const yDoc = new Y.Doc();
    const yProvider = provider("mixed", await server.token({ user: "y", org: "o", conversations: { mixed: "writer" } }), yDoc);
    const sdkToken = await server.token({ user: "s", org: "o", conversations: { mixed: "writer" } });
    const client = new ParleyClient({
      url: server.url,
      token: async () => sdkToken,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    });
    const handle = client.open("mixed");
    await Promise.all([handle.whenSynced(), waitUntil(() => yProvider.synced)]);
    for (let i = 0; i < 20; i++) {
      yDoc.getText("notes").insert(0, `y${i} `);
      handle.doc.getText("notes").insert(handle.doc.getText("notes").length, `s${i} `);
    }
    await handle.whenSaved();
    await waitUntil(() => yDoc.getText("notes").toString() === handle.doc.getText("notes").toString() && yDoc.getText("notes").length > 100);
    const text = yDoc.getText("notes").toString();
    for (let i = 0; i < 20; i++) expect(text).toContain(`y${i} `);
    for (let i = 0; i < 20; i++) expect(text).toContain(`s${i} `);
    client.close();
    yProvider.destroy();
  });

  it("stores nothing from a y-websocket observer", async () => {
    const token = await server.token({ user: "obs", org: "o", conversations: { watched: "observer" } });
    const doc = new Y.Doc();
    const p = provider("watched", token, doc);
    await waitUntil(() => p.synced);
    // The server answers an observer's update with a y-protocols auth message (type 2,
    // permission denied): the acknowledgement that it was handled, and refused.
    let refusals = 0;
    p.ws?.addEventListener("message", (event: MessageEvent) => {
      if (new Uint8Array(event.data as ArrayBuffer)[0] === 2) refusals++;
    });
    doc.getText("notes").insert(0, "should not be stored");
    await waitUntil(() => refusals > 0, { what: "the observer's update refused" });
    expect(await server.server.store.readEntries("watched", 0, 10)).toEqual([]);
    p.destroy();
  });

  it("refuses a connection without a valid token or grant with a close code y-websocket does not retry", async () => {
    const refusal = (url: string) =>
      new Promise<{ code: number; reason: string; messages: number }>((resolve) => {
        const ws = new WebSocket(url);
        let messages = 0;
        ws.on("message", () => messages++);
        ws.on("close", (code, reason) => resolve({ code, reason: reason.toString(), messages }));
      });
    expect(await refusal(`${server.yjsUrl}/secret?token=nonsense`)).toMatchObject({ code: 4401, reason: "token is invalid", messages: 1 });
    const token = await server.token({ user: "u", org: "o", conversations: { other: "writer" } });
    expect(await refusal(`${server.yjsUrl}/secret?token=${token}`)).toMatchObject({ code: 4403, messages: 1 });
    expect(await refusal(`${server.yjsUrl}/${"x".repeat(300)}?token=${token}`)).toMatchObject({ code: 4400 });

    // The unchanged provider stops reconnecting and says why.
    const doc = new Y.Doc();
    const p = provider("secret", token, doc);
    const closed = await new Promise<{ code: number }>((resolve) => p.once("closed", (event) => resolve(event)));
    expect(closed.code).toBe(4403);
    expect(p.shouldConnect).toBe(false);
    p.destroy();
  });
});
