// Rebuilding past states from a real store's log (the server's own SQLite store): every sampled
// seq equals the document replayed from scratch up to it, also when the snapshot before it lies
// several read pages back; moments map to the last change committed by then. And the restore edit
// on plain Yjs documents: formatting, meta, lost messages re-added (never removed) and concurrent
// edits. (The log here is written to the store directly, as servers before the document rules did.)

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { appendMessage, messagesOf, notesOf, readMessages } from "../protocol/index.ts";
import { seqAtMoment, stateAt, stateAtSeq } from "../server/history/past-state.ts";
import { renderConversation, restoreEdit } from "../server/history/restore-edit.ts";
import type { Store } from "../server/store/store.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let store: Store;
beforeAll(async () => {
  server = await startTestServer();
  store = server.server.store;
});
afterAll(async () => {
  await server?.cleanup();
});

const actor = { user: "usr_writer", org: "org_writer", session: "test" };

/** A document replayed from the first `count` updates. */
function replay(updates: Uint8Array[], count: number): Y.Doc {
  const doc = new Y.Doc();
  for (const update of updates.slice(0, count)) Y.applyUpdate(doc, update);
  return doc;
}

/** Captures the update each change to `doc` makes. */
function recorder(doc: Y.Doc): Uint8Array[] {
  const updates: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => updates.push(update));
  return updates;
}

describe("past states from the log", { timeout: 60_000 }, () => {
  const conversation = "cnv_history_pages";
  const updates: Uint8Array[] = [];
  /** seq of each update, in order (snapshots take seqs too). */
  const seqOf: number[] = [];

  beforeAll(async () => {
    const writer = new Y.Doc();
    const captured = recorder(writer);
    for (let i = 0; i < 700; i++) {
      if (i % 7 === 3 && messagesOf(writer).length > 0) messagesOf(writer).delete(0, 1);
      else if (i % 2) appendMessage(writer, { id: `m${i}`, authorUser: actor.user, authorOrg: actor.org, text: `message ${i}`, createdAt: i });
      else notesOf(writer).insert(notesOf(writer).length, `${i} `);
    }
    updates.push(...captured);
    // 300 updates, a snapshot, then 400 more: the last states lie two read pages past the snapshot,
    // the early ones have only the log's start before them.
    for (let start = 0; start < updates.length; start += 50) {
      if (start === 300) expect(await store.compact(conversation)).not.toBeNull();
      const committed = await store.appendBatch(updates.slice(start, start + 50).map((payload) => ({ conversation, kind: "update" as const, actor, payload })));
      seqOf.push(...committed.map((c) => c.seq));
    }
    expect(seqOf[299]).toBe(300);
    expect(seqOf[300]).toBe(302);
  });

  it("equals the document replayed up to each sampled seq", async () => {
    const head = seqOf[seqOf.length - 1];
    for (const seq of [0, 1, 2, 100, 255, 256, 257, 299, 300, 301, 302, 303, 500, 557, 558, 559, head - 1, head]) {
      const past = await stateAtSeq(store, conversation, seq);
      const expected = replay(updates, seqOf.filter((s) => s <= seq).length);
      const rebuilt = new Y.Doc();
      Y.applyUpdate(rebuilt, past.state);
      expect(past.seq).toBe(seq);
      expect(renderConversation(rebuilt)).toEqual(renderConversation(expected));
      expect(Y.encodeStateVector(rebuilt)).toEqual(Y.encodeStateVector(expected));
    }
    await expect(stateAt(store, conversation, { seq: head + 1 }, head)).rejects.toMatchObject({ message: expect.stringMatching(/beyond/) });
  });

  it("maps a moment to the last change committed by then", async () => {
    const head = seqOf[seqOf.length - 1];
    const log = await store.readEntries(conversation, 0, head);
    for (const entry of [log[0], log[120], log[300], log[head - 1]]) {
      const last = log.filter((e) => e.at <= entry.at).at(-1)?.seq;
      expect(await seqAtMoment(store, conversation, entry.at, head)).toBe(last);
    }
    expect(await seqAtMoment(store, conversation, log[0].at - 1, head)).toBe(0);
    expect(await seqAtMoment(store, conversation, log[head - 1].at + 60_000, head)).toBe(head);
  });
});

describe("the restore edit", () => {
  /** Two replicas of one document: `past` is a copy taken now, `current` goes on changing. */
  function fork(build: (doc: Y.Doc) => void): { current: Y.Doc; past: Y.Doc } {
    const current = new Y.Doc();
    build(current);
    const past = new Y.Doc();
    Y.applyUpdate(past, Y.encodeStateAsUpdate(current));
    return { current, past };
  }
  const meta = (doc: Y.Doc) => doc.getMap<unknown>("meta");
  const message = (id: string, authorUser = "u") => ({ id, authorUser, authorOrg: "o", text: id, createdAt: 1 });
  // Every client id was first used by u of o.
  const owner = () => ({ user: "u", org: "o" });

  it("brings back formatted notes and meta values, and removes keys added since", () => {
    const { current, past } = fork((doc) => {
      notesOf(doc).insert(0, "Plain, then bold.");
      notesOf(doc).format(12, 4, { bold: true });
      meta(doc).set("status", "closed");
    });
    notesOf(current).delete(0, 7);
    meta(current).set("status", "open");
    meta(current).set("extra", { nested: true });
    const edit = restoreEdit(current, past, owner);
    expect(edit).not.toBeNull();
    expect(notesOf(current).toDelta()).toEqual(notesOf(past).toDelta());
    expect(renderConversation(current)).toEqual(renderConversation(past));
    expect(restoreEdit(current, past, owner)).toBeNull();
  });

  it("re-adds lost entries after the entry they followed, and never removes or moves one", () => {
    const { current, past } = fork((doc) => messagesOf(doc).push([message("a"), message("b"), message("c"), message("x", "someone-else")]));
    // "b" and the forged "x" lost (by a delete stored before the rules), "d" added since.
    messagesOf(current).delete(1, 1);
    messagesOf(current).delete(2, 1);
    messagesOf(current).push([message("d")]);
    const edit = restoreEdit(current, past, owner);
    expect(readMessages(current).map((m) => m.id)).toEqual(["a", "b", "c", "d"]);
    // Only "b" may name its author; "x" never named its writer, so it is not brought back.
    expect([...(edit?.reAdded ?? [])]).toEqual([JSON.stringify(message("b"))]);
  });

  it("converges with a replica that edited concurrently, keeping that edit", () => {
    const { current, past } = fork((doc) => {
      messagesOf(doc).push([message("a"), message("b")]);
      notesOf(doc).insert(0, "hello");
    });
    messagesOf(current).delete(0, 1);
    notesOf(current).insert(5, " world");
    // Another client holds the same state and appends while the restore is computed.
    const other = new Y.Doc();
    Y.applyUpdate(other, Y.encodeStateAsUpdate(current));
    const concurrent = recorder(other);
    appendMessage(other, message("z"));

    const edit = restoreEdit(current, past, owner);
    if (!edit) throw new Error("expected a restore update");
    Y.applyUpdate(other, edit.update);
    for (const u of concurrent) Y.applyUpdate(current, u);
    expect(renderConversation(other)).toEqual(renderConversation(current));
    expect(readMessages(current).map((m) => m.id)).toEqual(["a", "b", "z"]);
    expect(notesOf(current).toString()).toBe("hello");
  });
});
