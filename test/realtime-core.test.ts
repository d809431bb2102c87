// The realtime core over raw protocol frames: join and sync, durable acks before fan-out,
// observers refused, authorship checked, awareness bound to its connection.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { encodeAwarenessUpdate, Awareness } from "y-protocols/awareness";
import { appendMessage, ErrorCode, readMessages } from "../protocol/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.cleanup();
});

/** Makes a Yjs update that inserts text into the notes. */
function textUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  let update: Uint8Array | null = null;
  doc.on("update", (u: Uint8Array) => {
    update = u;
  });
  doc.getText("notes").insert(0, text);
  if (!update) throw new Error("no update");
  return update;
}

async function joinAs(user: string, org: string, conversation: string, role: "writer" | "observer" = "writer") {
  const token = await server.token({ user, org, conversations: { [conversation]: role } });
  const client = await RawClient.authenticated(server.url, token);
  client.control({ type: "join", conversation });
  await client.waitForControl("joined", (m) => m.conversation === conversation);
  client.doc(conversation, { type: "sync-step1", stateVector: new Uint8Array([0]) });
  await client.waitFor((f) => f.kind === "doc" && f.message.type === "sync-step2");
  return client;
}

describe("realtime core", () => {
  it("acknowledges a durable update with its sequence number and delivers it to the others", async () => {
    const alice = await joinAs("alice", "helpdesk", "c-basic");
    const bob = await joinAs("bob", "supplier", "c-basic");
    alice.doc("c-basic", { type: "update", update: textUpdate("hello") });
    const ack = await alice.waitForControl("ack", (m) => m.conversation === "c-basic");
    expect(ack.seq).toBe(1);
    const received = await bob.waitFor((f) => f.kind === "doc" && f.message.type === "update");
    const doc = new Y.Doc();
    Y.applyUpdate(doc, (received as { message: { update: Uint8Array } }).message.update);
    expect(doc.getText("notes").toString()).toBe("hello");
    // The writer does not get its own update echoed back.
    expect(alice.frames.some((f) => f.kind === "doc" && f.message.type === "update")).toBe(false);
    const [entry] = await server.server.store.readEntries("c-basic", 0, 10);
    expect(entry).toMatchObject({ seq: 1, user: "alice", org: "helpdesk", kind: "update" });
    alice.close();
    bob.close();
  });

  it("gives a joining client exactly what its state vector lacks", async () => {
    const writer = await joinAs("w", "o", "c-join");
    writer.doc("c-join", { type: "update", update: textUpdate("abc") });
    await writer.waitForControl("ack");
    const token = await server.token({ user: "late", org: "o", conversations: { "c-join": "writer" } });
    const late = await RawClient.authenticated(server.url, token);
    late.control({ type: "join", conversation: "c-join" });
    const joined = await late.waitForControl("joined");
    expect(joined).toMatchObject({ role: "writer", seq: 1 });
    late.doc("c-join", { type: "sync-step1", stateVector: new Uint8Array([0]) });
    const step2 = await late.waitFor((f) => f.kind === "doc" && f.message.type === "sync-step2");
    const doc = new Y.Doc();
    Y.applyUpdate(doc, (step2 as { message: { update: Uint8Array } }).message.update);
    expect(doc.getText("notes").toString()).toBe("abc");
    writer.close();
    late.close();
  });

  it("refuses an update from an observer and stores nothing", async () => {
    const observer = await joinAs("olga", "supplier", "c-observed", "observer");
    observer.doc("c-observed", { type: "update", update: textUpdate("sneaky") });
    const error = await observer.waitForControl("error");
    expect(error).toMatchObject({ code: ErrorCode.ReadOnly, request: "write", conversation: "c-observed" });
    expect(await server.server.store.readEntries("c-observed", 0, 10)).toEqual([]);
    expect(observer.closeCode).toBeNull();
    observer.close();
  });

  it("refuses a message that names another author", async () => {
    const mallory = await joinAs("mallory", "evil", "c-authors");
    const doc = new Y.Doc();
    let update: Uint8Array = new Uint8Array();
    doc.on("update", (u: Uint8Array) => {
      update = u;
    });
    appendMessage(doc, { id: "m1", authorUser: "alice", authorOrg: "helpdesk", text: "pay me", createdAt: Date.now() });
    mallory.doc("c-authors", { type: "update", update });
    const error = await mallory.waitForControl("error");
    expect(error).toMatchObject({ code: ErrorCode.InvalidMessage, request: "write" });
    expect(await server.server.store.readEntries("c-authors", 0, 10)).toEqual([]);

    const own = new Y.Doc();
    own.on("update", (u: Uint8Array) => {
      update = u;
    });
    appendMessage(own, { id: "m2", authorUser: "mallory", authorOrg: "evil", text: "hi", createdAt: Date.now() });
    mallory.doc("c-authors", { type: "update", update });
    await mallory.waitForControl("ack");
    expect(readMessages(own)).toHaveLength(1);
    mallory.close();
  });

  it("binds awareness states to their connection", async () => {
    const a = await joinAs("a", "o", "c-aware");
    const b = await joinAs("b", "o", "c-aware");
    const doc = new Y.Doc();
    const awareness = new Awareness(doc);
    awareness.setLocalState({ name: "a" });
    a.doc("c-aware", { type: "awareness", update: encodeAwarenessUpdate(awareness, [doc.clientID]) });
    await b.waitFor((f) => f.kind === "doc" && f.message.type === "awareness");
    // b tries to overwrite a's state with the same client id.
    awareness.setLocalState({ name: "spoofed" });
    b.doc("c-aware", { type: "awareness", update: encodeAwarenessUpdate(awareness, [doc.clientID]) });
    const error = await b.waitForControl("error");
    expect(error).toMatchObject({ code: ErrorCode.Forbidden, request: "awareness" });
    a.close();
    b.close();
  });

  it("answers health and readiness probes", async () => {
    const health = await fetch(`${server.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get("strict-transport-security")).toContain("max-age");
    const ready = await fetch(`${server.httpUrl}/readyz`);
    expect(await ready.json()).toMatchObject({ status: "ready", store: "ok" });
    expect((await fetch(`${server.httpUrl}/nope`)).status).toBe(404);
  });
});
