// The document rules against a real server, one regression test per way they were broken: forged
// authorship through other content types, deleting another organisation's message, Yjs client-id
// squatting, document content steering server facts, unbounded nesting, restore removing others'
// messages, and updates that were acked but could not be merged or applied afterwards.

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { appendMessage, appendRetraction, ErrorCode, messagesOf, notesOf, type ReadMessage } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { allEvents } from "./helpers/partner-orgs.ts";
import { rawUpdate, sectioned } from "./helpers/raw-updates.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp as Org, signUp } from "./helpers/sign-up.ts";
import { docFrom, UpdateWriter, updateOf, type WriteAnswer } from "./helpers/update-writer.ts";

let server: TestServer;
let api: ReturnType<typeof apiClient>;
let helpdesk: Org;
let supplier: Org;
const writers: UpdateWriter[] = [];

beforeAll(async () => {
  // No checkpoint during the run: a restart must not race the checkpointer (another issue).
  server = await startTestServer({ env: { PARLEY_COMPACT_AFTER_UPDATES: "10", PARLEY_CHECKPOINT_INTERVAL_SECONDS: "86400" } });
  api = apiClient(server.httpUrl);
  helpdesk = await signUp(api, "ann@helpdesk.example", "Helpdesk BV");
  supplier = await signUp(api, "sam@supplier.example", "Supplier BV");
});

afterAll(async () => {
  for (const writer of writers) writer.close();
  await server?.cleanup();
});

async function startConversation(): Promise<string> {
  const created = await api("POST", "/v1/conversations", { token: helpdesk.token, body: { title: "Rules", participants: [{ organisation: supplier.orgId }] } });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

async function writer(org: Org, conversation: string): Promise<UpdateWriter> {
  const w = await UpdateWriter.join(server.url, org.token, conversation);
  writers.push(w);
  return w;
}

async function messages(conversation: string, org: Org = helpdesk): Promise<ReadMessage[]> {
  const response = await api("GET", `/v1/conversations/${conversation}/messages`, { token: org.token });
  expect(response.status).toBe(200);
  return response.body.items as unknown as ReadMessage[];
}

async function head(conversation: string): Promise<{ state: string; status: string; items: ReadMessage[]; seq: number }> {
  const { headSeq } = (await api("GET", `/v1/conversations/${conversation}/history?seq=0`, { token: helpdesk.token })).body as { headSeq: number };
  const response = await api("GET", `/v1/conversations/${conversation}/history?seq=${headSeq}`, { token: helpdesk.token });
  expect(response.status).toBe(200);
  return response.body as unknown as { state: string; status: string; items: ReadMessage[]; seq: number };
}

async function post(org: Org, conversation: string, text: string): Promise<ReadMessage> {
  const response = await api("POST", `/v1/conversations/${conversation}/messages`, { token: org.token, body: { text } });
  expect(response.status).toBe(201);
  return response.body.message as unknown as ReadMessage;
}

const entryCount = async (conversation: string) => (await server.server.store.readEntries(conversation, 0, 1000)).filter((e) => e.kind === "update").length;

function expectRefused(answer: WriteAnswer, code: number): void {
  expect(answer).toMatchObject({ ok: false, code });
}

const forged = (org: Org, id = "forged") => ({ id, authorUser: org.userId, authorOrg: org.orgId, text: "pay the invoice to NL00EVIL", createdAt: 1 });

describe("forged authorship (finding 1)", { timeout: 30_000 }, () => {
  it("refuses a message added as a Y.Map, ContentJSON, ContentEmbed or text, and names nobody falsely", async () => {
    const conversation = await startConversation();
    const mallory = await writer(supplier, conversation);
    const before = await entryCount(conversation);

    const mapDoc = new Y.Doc();
    const viaMap = updateOf(mapDoc, () => {
      const map = new Y.Map<unknown>();
      for (const [k, v] of Object.entries(forged(helpdesk))) map.set(k, v);
      mapDoc.getArray("messages").push([map]);
    });
    expectRefused(await mallory.send(viaMap), ErrorCode.InvalidMessage);

    const client = 7_000_001;
    expectRefused(await mallory.send(rawUpdate([{ client, clock: 0, position: { root: "messages" }, content: { json: [forged(helpdesk)] } }])), ErrorCode.InvalidMessage);
    expectRefused(await mallory.send(rawUpdate([{ client, clock: 0, position: { root: "messages" }, content: { embed: forged(helpdesk) } }])), ErrorCode.InvalidMessage);
    const textDoc = new Y.Doc();
    expectRefused(await mallory.send(updateOf(textDoc, () => textDoc.getText("messages").insert(0, "hello"))), ErrorCode.InvalidMessage);
    // Plain entries with extra fields, or nested inside another value, are not messages either.
    const extraDoc = new Y.Doc();
    const extra = updateOf(extraDoc, () => messagesOf(extraDoc).push([{ ...forged(supplier), admin: true } as never]));
    expectRefused(await mallory.send(extra), ErrorCode.InvalidMessage);
    const nestedDoc = new Y.Doc();
    expectRefused(await mallory.send(updateOf(nestedDoc, () => messagesOf(nestedDoc).push([[forged(helpdesk)] as never]))), ErrorCode.InvalidMessage);
    // ...and the plain ContentAny forgery stays refused.
    const anyDoc = new Y.Doc();
    expectRefused(await mallory.send(updateOf(anyDoc, () => appendMessage(anyDoc, forged(helpdesk)))), ErrorCode.InvalidMessage);

    expect(await entryCount(conversation)).toBe(before);
    expect(await messages(conversation)).toEqual([]);
    // A message in the sender's own name goes through, and the event stream names its sender.
    const own = new Y.Doc();
    const ok = await mallory.send(updateOf(own, () => appendMessage(own, { ...forged(supplier, "own"), text: "hello" })));
    expect(ok.ok).toBe(true);
    expect((await messages(conversation)).map((m) => [m.id, m.authorUser, m.authorOrg])).toEqual([["own", supplier.userId, supplier.orgId]]);
    await vi.waitFor(
      async () => {
        const created = (await allEvents(api, helpdesk.token)).filter((e) => e.type === "message.created" && e.conversation === conversation);
        expect(created.map((e) => (e.data as { message: { authorUser: string } }).message.authorUser)).toEqual([supplier.userId]);
      },
      { timeout: 10_000 },
    );
  });
});

describe("deleting or changing messages (finding 2)", { timeout: 30_000 }, () => {
  it("refuses a delete of another organisation's message, and of one's own; a retraction takes a message back", async () => {
    const conversation = await startConversation();
    const ann = await post(helpdesk, conversation, "The valve is under warranty.");
    const mallory = await writer(supplier, conversation);
    const before = await entryCount(conversation);

    const doc = docFrom((await head(conversation)).state);
    expectRefused(await mallory.send(updateOf(doc, () => messagesOf(doc).delete(0, 1))), ErrorCode.InvalidMessage);
    // A hand-made delete set naming the message's clocks is refused the same way.
    const item = messagesOf(docFrom((await head(conversation)).state))._start as Y.Item;
    expectRefused(await mallory.send(rawUpdate([], [{ client: item.id.client, ranges: [[item.id.clock, 1]] }])), ErrorCode.InvalidMessage);
    expect(await entryCount(conversation)).toBe(before);
    expect((await messages(conversation)).map((m) => m.id)).toEqual([ann.id]);

    // Not even the author deletes: they retract.
    const annWriter = await writer(helpdesk, conversation);
    const own = docFrom((await head(conversation)).state);
    expectRefused(await annWriter.send(updateOf(own, () => messagesOf(own).delete(0, 1))), ErrorCode.InvalidMessage);
    const fresh = docFrom((await head(conversation)).state);
    const retraction = { id: "r1", authorUser: helpdesk.userId, authorOrg: helpdesk.orgId, retracts: ann.id, createdAt: 2 };
    expect((await annWriter.send(updateOf(fresh, () => appendRetraction(fresh, retraction)))).ok).toBe(true);
    // Someone else's retraction is stored as an entry but takes nothing back.
    const theirs = docFrom((await head(conversation)).state);
    const foreignRetraction = { id: "r2", authorUser: supplier.userId, authorOrg: supplier.orgId, retracts: ann.id, createdAt: 3 };
    expect((await mallory.send(updateOf(theirs, () => appendRetraction(theirs, foreignRetraction)))).ok).toBe(true);
    const listed = await messages(conversation, supplier);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: ann.id, authorUser: helpdesk.userId, text: ann.text, retracted: { id: "r1", createdAt: 2 } });
  });
});

describe("client-id squatting (finding 3)", { timeout: 30_000 }, () => {
  it("refuses an update under another writer's client id, so the owner's next write stays visible, across restarts", async () => {
    const conversation = await startConversation();
    const annWriter = await writer(helpdesk, conversation);
    const mallory = await writer(supplier, conversation);
    const annDoc = new Y.Doc();
    expect((await annWriter.send(updateOf(annDoc, () => appendMessage(annDoc, { ...forged(helpdesk, "a1"), text: "first" })))).ok).toBe(true);

    // Mallory writes her own message under Ann's client id at Ann's next clock.
    const squat = docFrom(Y.encodeStateAsUpdate(annDoc), annDoc.clientID);
    const squatUpdate = updateOf(squat, () => appendMessage(squat, { ...forged(supplier, "m1"), text: "squatted" }));
    expectRefused(await mallory.send(squatUpdate), ErrorCode.ClientIdTaken);
    // In the notes too: the client id is Ann's, whatever the content.
    const squatNotes = docFrom(Y.encodeStateAsUpdate(annDoc), annDoc.clientID);
    expectRefused(await mallory.send(updateOf(squatNotes, () => notesOf(squatNotes).insert(0, "x"))), ErrorCode.ClientIdTaken);

    // Ann's next write at that clock is acked and visible.
    const second = await annWriter.send(updateOf(annDoc, () => appendMessage(annDoc, { ...forged(helpdesk, "a2"), text: "second" })));
    expect(second.ok).toBe(true);
    expect((await messages(conversation)).map((m) => m.text)).toEqual(["first", "second"]);

    // The memory survives compaction and a restart (rebuilt from the log).
    for (let i = 0; i < 11; i++) await post(helpdesk, conversation, `filler ${i}`);
    await server.restart();
    const again = await writer(supplier, conversation);
    const squatLater = docFrom((await head(conversation)).state, annDoc.clientID);
    expectRefused(await again.send(updateOf(squatLater, () => notesOf(squatLater).insert(0, "late"))), ErrorCode.ClientIdTaken);
    const annAgain = await writer(helpdesk, conversation);
    expect((await annAgain.send(updateOf(annDoc, () => notesOf(annDoc).insert(0, "mine")))).ok).toBe(true);
  });
});

describe("updates that would not merge or apply (issue 18, finding 7)", { timeout: 60_000 }, () => {
  it("refuses a delete set with a zero-length range, and the conversation stays readable", async () => {
    const conversation = await startConversation();
    await post(helpdesk, conversation, "hello");
    const mallory = await writer(supplier, conversation);
    const doc = docFrom((await head(conversation)).state);
    const client = (messagesOf(doc)._start as Y.Item).id.client;
    expectRefused(await mallory.send(rawUpdate([], [{ client, ranges: [[0, 0]] }])), ErrorCode.UnmergeableUpdate);
    // Deleting what does not exist (yet) is refused too: it would take later content with it.
    expectRefused(await mallory.send(rawUpdate([], [{ client, ranges: [[5, 10]] }])), ErrorCode.UnmergeableUpdate);
    // An item that refers to nothing would never become visible.
    expectRefused(
      await mallory.send(rawUpdate([{ client: 7_000_002, clock: 0, position: { origin: [123, 4] }, content: { string: "x" } }])),
      ErrorCode.UnmergeableUpdate,
    );
    expect((await messages(conversation)).map((m) => m.text)).toEqual(["hello"]);
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, Buffer.from((await head(conversation)).state, "base64"));
    expect(fresh.store.pendingStructs).toBeNull();
  });

  it("keeps every conversation readable under bit-flipped updates: whatever is acked merges and applies", async () => {
    const conversation = await startConversation();
    const mallory = await writer(supplier, conversation);
    const source = new Y.Doc();
    const valid: Uint8Array[] = [];
    valid.push(updateOf(source, () => notesOf(source).insert(0, "hello world")));
    valid.push(updateOf(source, () => appendMessage(source, { ...forged(supplier, "v1"), text: "valid" })));
    valid.push(updateOf(source, () => notesOf(source).delete(2, 3)));
    valid.push(updateOf(source, () => source.getMap("meta").set("k", { a: [1, 2] })));
    for (const update of valid) expect((await mallory.send(update)).ok).toBe(true);
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let acked = 0;
    for (let i = 0; i < 300; i++) {
      const base = valid[Math.floor(random() * valid.length)];
      const flipped = Uint8Array.from(base);
      const at = Math.floor(random() * flipped.length);
      flipped[at] ^= 1 << Math.floor(random() * 8);
      if ((await mallory.send(flipped)).ok) acked++;
    }
    // Every read still answers, and a fresh client applies the merged state without leftovers.
    const state = await head(conversation);
    expect((await messages(conversation)).map((m) => m.id)).toContain("v1");
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, Buffer.from(state.state, "base64"));
    expect(fresh.store.pendingStructs).toBeNull();
    expect(fresh.store.pendingDs).toBeNull();
    expect(acked).toBeGreaterThanOrEqual(0);
  });
});

// Every Yjs encoder writes each client's structs once, highest client id first, and Yjs's readers
// rely on it: Y.mergeUpdates skips a higher client's structs that follow a lower one's, and
// Y.applyUpdate keeps only the last section of a client named twice. Acked as sent, such an
// update left the merged state (and every client that applied the update) with a hole.
describe("client sections Yjs's readers would lose (merged state with a missing dependency)", { timeout: 30_000 }, () => {
  const logged = async (conversation: string) =>
    (await server.server.store.readEntries(conversation, 0, 1000)).filter((e) => e.kind === "update" && e.payload).map((e) => e.payload as Uint8Array);

  function expectComplete(doc: Y.Doc): void {
    expect(doc.store.pendingStructs).toBeNull();
    expect(doc.store.pendingDs).toBeNull();
  }

  it("an update with a lower client id before a higher one keeps both in the merged state", async () => {
    const conversation = await startConversation();
    const sam = await writer(supplier, conversation);
    const low = new Y.Doc();
    low.clientID = 1001;
    const high = new Y.Doc();
    high.clientID = 2002;
    const both = Y.mergeUpdates([updateOf(low, () => notesOf(low).insert(0, "abc")), updateOf(high, () => high.getMap("meta").set("owner", "sam"))]);
    expect((await sam.send(sectioned(both, [[1001, 1], [2002, 1]]))).ok).toBe(true);
    const merged = docFrom((await head(conversation)).state);
    expectComplete(merged);
    expect([notesOf(merged).toString(), merged.getMap("meta").get("owner")]).toEqual(["abc", "sam"]);
    // The index knew 2002:0, so an edit after it was acked; the merged state then held it pending.
    expect((await sam.send(updateOf(high, () => high.getMap("meta").set("owner", "sam, again")))).ok).toBe(true);
    const after = docFrom((await head(conversation)).state);
    expectComplete(after);
    expect(after.getMap("meta").get("owner")).toBe("sam, again");
    const replay = new Y.Doc();
    for (const update of await logged(conversation)) Y.applyUpdate(replay, update);
    expectComplete(replay);
    expect(replay.getMap("meta").get("owner")).toBe("sam, again");
  });

  it("an update naming one client twice is stored so that a client applying it gets all of it", async () => {
    const conversation = await startConversation();
    const sam = await writer(supplier, conversation);
    const doc = new Y.Doc();
    doc.clientID = 3003;
    const update = updateOf(doc, () => {
      notesOf(doc).insert(0, "ab");
      doc.getMap("meta").set("k", "v");
    });
    expect(Y.decodeUpdate(update).structs).toHaveLength(2);
    expect((await sam.send(sectioned(update, [[3003, 1], [3003, 1]]))).ok).toBe(true);
    const stored = (await logged(conversation)).at(-1) as Uint8Array;
    const applied = new Y.Doc();
    Y.applyUpdate(applied, stored);
    expectComplete(applied);
    expect([notesOf(applied).toString(), applied.getMap("meta").get("k")]).toEqual(["ab", "v"]);
    expectComplete(docFrom((await head(conversation)).state));
  });
});

describe("server facts and bounds (finding 4)", { timeout: 60_000 }, () => {
  it("takes the status from the directory, whatever meta.status says", async () => {
    const conversation = await startConversation();
    const mallory = await writer(supplier, conversation);
    const doc = new Y.Doc();
    expect((await mallory.send(updateOf(doc, () => doc.getMap("meta").set("status", "closed")))).ok).toBe(true);
    expect((await head(conversation)).status).toBe("open");
    const described = await api("GET", `/v1/conversations/${conversation}`, { token: helpdesk.token });
    expect(described.body.status).toBe("open");
  });

  it("refuses a 40 000-deep nested map at write time and stays readable", async () => {
    const conversation = await startConversation();
    const mallory = await writer(supplier, conversation);
    const doc = new Y.Doc();
    const deep = updateOf(doc, () => {
      let map = doc.getMap<unknown>("deep");
      for (let i = 0; i < 40_000; i++) {
        const next = new Y.Map<unknown>();
        map.set("k", next);
        map = next;
      }
    });
    expectRefused(await mallory.send(deep), ErrorCode.DocumentLimit);
    // As deep as the limit allows is fine; one level more is not. Values nest like types do.
    const limit = server.server.config.limits.document.maxDepth;
    const ok = new Y.Doc();
    expect(
      (
        await mallory.send(
          updateOf(ok, () => {
            let map = ok.getMap<unknown>("deep");
            for (let i = 0; i < limit; i++) {
              const next = new Y.Map<unknown>();
              map.set("k", next);
              map = next;
            }
          }),
        )
      ).ok,
    ).toBe(true);
    let value: unknown = 1;
    for (let i = 0; i < limit + 1; i++) value = [value];
    const values = new Y.Doc();
    expectRefused(await mallory.send(updateOf(values, () => values.getMap("meta").set("v", value))), ErrorCode.DocumentLimit);
    expect((await messages(conversation)).length).toBe(0);
    expect((await head(conversation)).status).toBe("open");
  });

  it("refuses content beyond the item and size limits", async () => {
    const small = await startTestServer({ env: { PARLEY_MAX_DOC_ITEMS: "1000", PARLEY_MAX_DOC_MB: "1" } });
    try {
      const smallApi = apiClient(small.httpUrl);
      const owner = await signUp(smallApi, "owner@limits.example", "Limits BV");
      const created = await smallApi("POST", "/v1/conversations", { token: owner.token, body: { title: "Limits" } });
      const conversation = created.body.id as string;
      const w = await UpdateWriter.join(small.url, owner.token, conversation);
      try {
        const doc = new Y.Doc();
        expect((await w.send(updateOf(doc, () => notesOf(doc).insert(0, "x".repeat(900))))).ok).toBe(true);
        expectRefused(await w.send(updateOf(doc, () => notesOf(doc).insert(0, "y".repeat(200)))), ErrorCode.DocumentLimit);
        // Binary values are one item each, however large: the size limit (1 MiB) bounds them. (A
        // fresh client: the one above holds the refused change, so it would continue after a gap.)
        const blobs = new Y.Doc();
        expect(await w.send(updateOf(blobs, () => blobs.getMap("meta").set("a", new Uint8Array(600_000))))).toMatchObject({ ok: true });
        expectRefused(await w.send(updateOf(blobs, () => blobs.getMap("meta").set("b", new Uint8Array(600_000)))), ErrorCode.DocumentLimit);
      } finally {
        w.close();
      }
    } finally {
      await small.cleanup();
    }
  });
});

describe("restore (finding 5)", { timeout: 30_000 }, () => {
  it("never removes another organisation's messages, and restores the notes", async () => {
    const conversation = await startConversation();
    await post(helpdesk, conversation, "one");
    const annWriter = await writer(helpdesk, conversation);
    const doc = docFrom((await head(conversation)).state);
    const notesSeq = await annWriter.send(updateOf(doc, () => notesOf(doc).insert(0, "Agreed: Monday")));
    expect(notesSeq.ok).toBe(true);
    const restorePoint = (notesSeq as { seq: number }).seq;
    await post(supplier, conversation, "two, from the supplier");
    expect((await annWriter.send(updateOf(doc, () => notesOf(doc).delete(0, 8)))).ok).toBe(true);

    const restored = await api("POST", `/v1/conversations/${conversation}/restore`, { token: helpdesk.token, body: { seq: restorePoint } });
    expect(restored.status).toBe(200);
    expect((await messages(conversation)).map((m) => m.text)).toEqual(["one", "two, from the supplier"]);
    expect(docFrom((await head(conversation)).state).getText("notes").toString()).toBe("Agreed: Monday");
  });

  it("re-adds a message lost before the rules in its author's name, and nothing in anyone else's", async () => {
    const conversation = await startConversation();
    const lost = await post(supplier, conversation, "lost before the rules");
    const past = (await head(conversation)).seq;
    // A delete stored before the rules existed (written to the log directly, as old servers did).
    const doc = docFrom((await head(conversation)).state);
    const legacyDelete = updateOf(doc, () => messagesOf(doc).delete(0, 1));
    await server.server.store.appendBatch([{ conversation, kind: "update", actor: { user: helpdesk.userId, org: helpdesk.orgId, session: "legacy" }, payload: legacyDelete }]);
    await server.restart();
    expect(await messages(conversation)).toEqual([]);
    const restored = await api("POST", `/v1/conversations/${conversation}/restore`, { token: helpdesk.token, body: { seq: past } });
    expect(restored.status).toBe(200);
    expect((await messages(conversation)).map((m) => [m.text, m.authorUser])).toEqual([[lost.text, supplier.userId]]);
  });

  // Property seed 1066731413: a restore re-adds text under its own client id, a participant types
  // after it, and the run's replay of only the updates it had sent itself left that edit pending.
  it("an edit built on restored text is acked and visible, and the log replays completely", async () => {
    const conversation = await startConversation();
    const samWriter = await writer(supplier, conversation);
    const sams = docFrom((await head(conversation)).state);
    const first = updateOf(sams, () => notesOf(sams).insert(0, "Wql"));
    const typed = await samWriter.send(first);
    expect(typed.ok).toBe(true);
    for (const seq of [0, (typed as { seq: number }).seq]) {
      const restored = await api("POST", `/v1/conversations/${conversation}/restore`, { token: supplier.token, body: { seq } });
      expect(restored.status).toBe(200);
    }
    const restoredState = (await head(conversation)).state;
    const after = docFrom(restoredState, sams.clientID);
    expect(notesOf(after).toString()).toBe("Wql");
    // The restored text is the restore's own item: the edit after it depends on the restore's update.
    const edit = updateOf(after, () => notesOf(after).insert(3, "J^9d"));
    expect((Y.decodeUpdate(edit).structs[0] as Y.Item).origin?.client).not.toBe(sams.clientID);
    expect((await samWriter.send(edit)).ok).toBe(true);
    // Sam's own updates alone cannot be applied completely (what the property's old oracle did).
    const samsOnly = new Y.Doc();
    for (const update of [first, edit]) Y.applyUpdate(samsOnly, update);
    expect(samsOnly.store.pendingStructs).not.toBeNull();

    const merged = docFrom((await head(conversation)).state);
    expect(merged.store.pendingStructs).toBeNull();
    expect(merged.store.pendingDs).toBeNull();
    expect(notesOf(merged).toString()).toBe("WqlJ^9d");
    const replay = new Y.Doc();
    for (const entry of await server.server.store.readEntries(conversation, 0, 1000)) if (entry.kind === "update" && entry.payload) Y.applyUpdate(replay, entry.payload);
    expect(replay.store.pendingStructs).toBeNull();
    expect(replay.store.pendingDs).toBeNull();
    expect(notesOf(replay).toString()).toBe("WqlJ^9d");
  });
});
