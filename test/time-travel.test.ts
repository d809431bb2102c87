// Time travel against a real server (SQLite in a temp dir, compaction every 10 updates): a
// conversation read at every past seq and moment equals what it was then, across snapshots;
// a restore is one new attributed change that brings the notes back and keeps every message
// (the list is append-only), live SDK clients converge to it and the audit chain verifies; hostile points and
// foreign organisations get clear errors and change nothing.

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { apiUrlFor } from "../client-sdk/history.ts";
import { type ConversationHandle, ParleyClient, ParleyError, type WebSocketConstructor } from "../client-sdk/index.ts";
import { appendMessage, type ConversationMessage, ErrorCode, notesOf, readMessages } from "../protocol/index.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp as Org, signUp } from "./helpers/sign-up.ts";

const DAY = 86_400_000;
let clock = Date.now();
let server: TestServer;
let api: ReturnType<typeof apiClient>;
const clients: ParleyClient[] = [];

function sdk(org: Org): ParleyClient {
  const client = new ParleyClient({ url: server.url, token: async () => org.token, WebSocket: WebSocket as unknown as WebSocketConstructor });
  clients.push(client);
  return client;
}

async function post(org: Org, conversation: string, text: string): Promise<{ message: ConversationMessage; seq: number }> {
  const response = await api("POST", `/v1/conversations/${conversation}/messages`, { token: org.token, body: { text } });
  expect(response.status).toBe(201);
  return response.body as unknown as { message: ConversationMessage; seq: number };
}

function expectError(response: ApiResponse, status: number, code: number, message?: RegExp): void {
  expect(response.status).toBe(status);
  expect(response.body.error?.code).toBe(code);
  if (message) expect(response.body.error?.message).toMatch(message);
}

const texts = (items: unknown) => (items as ConversationMessage[]).map((m) => m.text);
const notes = (handle: ConversationHandle) => notesOf(handle.doc).toString();

let helpdesk: Org;
let supplier: Org;
let watcher: Org;
let outsider: Org;

beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_COMPACT_AFTER_UPDATES: "10" }, now: () => clock });
  api = apiClient(server.httpUrl);
  helpdesk = await signUp(api, "ann@helpdesk.example", "Helpdesk BV");
  supplier = await signUp(api, "sam@supplier.example", "Supplier BV");
  watcher = await signUp(api, "wes@watcher.example", "Watcher BV");
  outsider = await signUp(api, "eve@outsider.example", "Outsider BV");
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server?.cleanup();
});

async function startConversation(title: string): Promise<string> {
  const created = await api("POST", "/v1/conversations", {
    token: helpdesk.token,
    body: { title, participants: [{ organisation: supplier.orgId }, { organisation: watcher.orgId, role: "observer" }] },
  });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

describe("time travel", { timeout: 30_000 }, () => {
  it("reads the conversation as it was at every past seq and moment, across compactions", async () => {
    const conversation = await startConversation("History");
    const posted: { seq: number; text: string }[] = [];
    for (let i = 1; i <= 25; i++) {
      // Distinct commit times, after the creation's (the store stamps by the server's clock), so every message has a moment of its own to be read at.
      clock += 3;
      const { seq } = await post(i % 2 ? helpdesk : supplier, conversation, `message ${i}`);
      posted.push({ seq, text: `message ${i}` });
    }
    // Compaction ran (asynchronously) at least twice: snapshots sit in the log between updates.
    await vi.waitFor(async () => {
      const log = await server.server.store.readEntries(conversation, 0, 100);
      expect(log.filter((entry) => entry.kind === "snapshot").length).toBeGreaterThanOrEqual(2);
    });
    const log = await server.server.store.readEntries(conversation, 0, 100);
    const head = log[log.length - 1].seq;

    for (let seq = 0; seq <= head; seq++) {
      const past = await api("GET", `/v1/conversations/${conversation}/history?seq=${seq}`, { token: supplier.token });
      expect(past.status).toBe(200);
      expect(past.body).toMatchObject({ seq, headSeq: head, status: "open", notes: "" });
      expect(texts(past.body.items)).toEqual(posted.filter((p) => p.seq <= seq).map((p) => p.text));
      // The Yjs state is the same content, for clients that want the document itself.
      const doc = new Y.Doc();
      Y.applyUpdate(doc, Buffer.from(past.body.state as string, "base64"));
      expect(readMessages(doc)).toEqual(past.body.items);
    }

    // The timeline lists every update (not the snapshots) with its author, paged.
    const timeline: { seq: number; at: number; actor: { user: string; org: string } }[] = [];
    let after = 0;
    for (;;) {
      const page = await api("GET", `/v1/conversations/${conversation}/changes?after=${after}&limit=7`, { token: helpdesk.token });
      expect(page.status).toBe(200);
      timeline.push(...(page.body.items as typeof timeline));
      after = page.body.nextCursor as number;
      if (!page.body.hasMore) break;
    }
    expect(timeline.map((c) => c.seq)).toEqual(posted.map((p) => p.seq));
    expect(timeline[0].actor).toEqual({ user: helpdesk.userId, org: helpdesk.orgId });
    expect(timeline[1].actor).toEqual({ user: supplier.userId, org: supplier.orgId });

    // Read at each change's moment, as milliseconds and as ISO time: everything committed by then.
    for (const change of timeline) {
      const expected = posted.filter((p) => timeline.find((c) => c.seq === p.seq)!.at <= change.at).map((p) => p.text);
      for (const at of [String(change.at), new Date(change.at).toISOString()]) {
        const past = await api("GET", `/v1/conversations/${conversation}/history?at=${encodeURIComponent(at)}`, { token: watcher.token });
        expect(past.status).toBe(200);
        expect(texts(past.body.items)).toEqual(expected);
        expect(past.body.seq as number).toBeGreaterThanOrEqual(change.seq);
      }
    }
    // Between creation and the first change the conversation was empty.
    const before = await api("GET", `/v1/conversations/${conversation}/history?at=${timeline[0].at - 1}`, { token: helpdesk.token });
    expect(before.body).toMatchObject({ seq: 0, at: null, items: [] });
  });

  it("restores a past moment as one new change that live clients converge to, with the audit chain intact", async () => {
    const conversation = await startConversation("Restore");
    const ann = sdk(helpdesk);
    const sam = sdk(supplier);
    const annDoc = ann.open(conversation);
    const samDoc = sam.open(conversation);
    await Promise.all([annDoc.whenSynced(), samDoc.whenSynced()]);

    annDoc.doc.getText("notes").insert(0, "Agreed: replace the valve on Monday.");
    await annDoc.whenSaved();
    await post(helpdesk, conversation, "Boiler in room 4 is broken.");
    const { seq: good } = await post(supplier, conversation, "We will come on Monday.");
    await vi.waitFor(() => expect(readMessages(samDoc.doc)).toHaveLength(2));
    const past = await ann.history(conversation, { seq: good });

    // Then, a while later on the server's clock, things go wrong: the notes rewritten, a message added.
    clock += 1000;
    samDoc.doc.transact(() => {
      notesOf(samDoc.doc).delete(8, 5);
      notesOf(samDoc.doc).insert(0, "NOT ");
    });
    appendMessage(samDoc.doc, { id: "msg-late", authorUser: supplier.userId, authorOrg: supplier.orgId, text: "Actually, Friday.", createdAt: clock });
    await samDoc.whenSaved();
    await vi.waitFor(() => expect(texts(readMessages(annDoc.doc))).toEqual(["Boiler in room 4 is broken.", "We will come on Monday.", "Actually, Friday."]));

    // The observer may look back but not restore; nothing is written.
    const headBefore = (await ann.changes(conversation, { limit: 200 })).items.at(-1)?.seq;
    const observer = await api("POST", `/v1/conversations/${conversation}/restore`, { token: watcher.token, body: { seq: good } });
    expectError(observer, 403, ErrorCode.ReadOnly);

    const restored = await ann.restore(conversation, { at: new Date(past.at as number) });
    expect(restored).toMatchObject({ changed: true, restoredTo: { seq: good } });
    expect(restored.seq).toBeGreaterThan(headBefore as number);

    // Both live documents converge: the notes as they were, and every message kept (the message
    // list is append-only: a restore never takes back anybody's message, the supplier's late one
    // included).
    const all = [...past.items, expect.objectContaining({ id: "msg-late", authorUser: supplier.userId, text: "Actually, Friday." })];
    for (const handle of [annDoc, samDoc]) {
      await vi.waitFor(() => {
        expect(readMessages(handle.doc)).toEqual(all);
        expect(notes(handle)).toBe("Agreed: replace the valve on Monday.");
      });
    }
    const now = await api("GET", `/v1/conversations/${conversation}/messages`, { token: supplier.token });
    expect(now.body.items).toEqual(all);

    // History was not rewritten: the bad state is still readable, and the restore is on the timeline.
    const bad = await sam.history(conversation, { seq: restored.seq - 1 });
    expect(texts(bad.items)).toEqual(["Boiler in room 4 is broken.", "We will come on Monday.", "Actually, Friday."]);
    const changes = await sam.changes(conversation, { after: restored.seq - 1 });
    expect(changes.items).toEqual([expect.objectContaining({ seq: restored.seq, restore: true, actor: { user: helpdesk.userId, org: helpdesk.orgId } })]);
    expect(changes.hasMore).toBe(false);

    // Restoring to where it already is changes nothing.
    expect(await ann.restore(conversation, { seq: good })).toMatchObject({ changed: false, seq: restored.seq });

    const verification = await verifyConversation(server.server.store, conversation, server.server.keys.auditKey);
    expect(verification).toMatchObject({ ok: true, head: { seq: restored.seq } });
    // The restoring organisation's audit chain says who restored what, to which point.
    const orgChain = await server.server.audit.log.readOrgAuditEntries(helpdesk.orgId, 0, 10_000);
    expect(orgChain.filter((entry) => entry.action === "conversation.restored")).toEqual([
      expect.objectContaining({ actor: `user:${helpdesk.userId}`, target: conversation, details: { seq: restored.seq, restoredToSeq: good } }),
    ]);
  });

  it("answers hostile points, forbidden conversations and bad input with clear errors and changes nothing", async () => {
    clock = Date.now();
    const conversation = await startConversation("Hostile");
    const { seq: head } = await post(helpdesk, conversation, "only message");
    const history = (query: string, org: Org = helpdesk) => api("GET", `/v1/conversations/${conversation}/history?${query}`, { token: org.token });
    const restore = (body: unknown, org: Org = helpdesk) => api("POST", `/v1/conversations/${conversation}/restore`, { token: org.token, body });

    expectError(await history(`seq=${head + 1}`), 400, ErrorCode.InvalidRequest, /beyond/);
    expectError(await history("seq=-1"), 400, ErrorCode.InvalidRequest, /seq/);
    expectError(await history("seq=1.5"), 400, ErrorCode.InvalidRequest, /seq/);
    expectError(await history("seq=abc"), 400, ErrorCode.InvalidRequest, /seq/);
    expectError(await history("seq=99999999999999999999"), 400, ErrorCode.InvalidRequest, /seq/);
    expectError(await history("at=yesterday"), 400, ErrorCode.InvalidRequest, /at/);
    expectError(await history("at=2026-13-45T99:00:00Z"), 400, ErrorCode.InvalidRequest, /at/);
    expectError(await history("at=2026-01-01"), 400, ErrorCode.InvalidRequest, /at/);
    expectError(await history(`at=${encodeURIComponent(new Date(clock - DAY).toISOString())}`), 400, ErrorCode.InvalidRequest, /before the conversation was created/);
    expectError(await history(""), 400, ErrorCode.InvalidRequest, /exactly one/);
    expectError(await history(`seq=1&at=${clock}`), 400, ErrorCode.InvalidRequest, /exactly one/);
    expectError(await history("after=-3", helpdesk), 400, ErrorCode.InvalidRequest);

    expectError(await restore({ seq: -1 }), 400, ErrorCode.InvalidRequest, /seq/);
    expectError(await restore({ seq: head + 5 }), 400, ErrorCode.InvalidRequest, /beyond/);
    expectError(await restore({ at: "not a time" }), 400, ErrorCode.InvalidRequest, /at/);
    expectError(await restore({ at: clock - DAY }), 400, ErrorCode.InvalidRequest, /before the conversation was created/);
    expectError(await restore({}), 400, ErrorCode.InvalidRequest, /exactly one/);
    expectError(await restore({ seq: "1" }), 400, ErrorCode.InvalidRequest, /seq/);

    // Another organisation gets exactly what it gets for the conversation itself: it does not exist.
    const own = await api("GET", `/v1/conversations/${conversation}`, { token: outsider.token });
    expectError(own, 404, ErrorCode.NotFound);
    for (const response of [
      await history("seq=1", outsider),
      await api("GET", `/v1/conversations/${conversation}/changes`, { token: outsider.token }),
      await restore({ seq: 0 }, outsider),
      await api("GET", "/v1/conversations/cnv_nope/history?seq=0", { token: helpdesk.token }),
    ]) {
      expect(response.body).toEqual(own.body);
      expect(JSON.stringify(response.body)).not.toContain("only message");
    }
    expectError(await api("GET", `/v1/conversations/${conversation}/history?seq=0`, {}), 401, ErrorCode.InvalidCredentials);

    // Nothing was written by any of it.
    const after = await api("GET", `/v1/conversations/${conversation}/messages`, { token: helpdesk.token });
    expect(after.body).toMatchObject({ seq: head, items: [expect.objectContaining({ text: "only message" })] });
  });

  it("lets a read-only API key and a closed conversation look back but not restore", async () => {
    const conversation = await startConversation("Read-only");
    const { seq } = await post(helpdesk, conversation, "kept");
    const key = await api("POST", `/v1/organisations/${helpdesk.orgId}/api-keys`, { token: helpdesk.token, body: { name: "reader", scopes: ["conversations:read"] } });
    expect(key.status).toBe(201);
    const reader = key.body.key as string;
    const read = await api("GET", `/v1/conversations/${conversation}/history?seq=${seq}`, { token: reader });
    expect(texts(read.body.items)).toEqual(["kept"]);
    expectError(await api("POST", `/v1/conversations/${conversation}/restore`, { token: reader, body: { seq: 0 } }), 403, ErrorCode.Forbidden, /conversations:write/);

    expect((await api("POST", `/v1/conversations/${conversation}/close`, { token: helpdesk.token })).status).toBe(200);
    expect((await api("GET", `/v1/conversations/${conversation}/history?seq=0`, { token: supplier.token })).status).toBe(200);
    expectError(await api("POST", `/v1/conversations/${conversation}/restore`, { token: helpdesk.token, body: { seq: 0 } }), 403, ErrorCode.ReadOnly);
    const after = await api("GET", `/v1/conversations/${conversation}/messages`, { token: helpdesk.token });
    expect(after.body).toMatchObject({ seq, items: [expect.objectContaining({ text: "kept" })] });
  });

  it("gives SDK errors their code, and derives the API's URL from the socket's", async () => {
    const conversation = await startConversation("SDK errors");
    const error = await sdk(helpdesk)
      .history(conversation, { seq: 3 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParleyError);
    expect(error).toMatchObject({ code: ErrorCode.InvalidRequest });
    const denied = await sdk(outsider)
      .restore(conversation, { seq: 0 })
      .catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: ErrorCode.NotFound });
    expect(apiUrlFor("wss://parley.example.com/ws")).toBe("https://parley.example.com");
    expect(apiUrlFor("ws://127.0.0.1:8080/ws")).toBe("http://127.0.0.1:8080");
  });
});
