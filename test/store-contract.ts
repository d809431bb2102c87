// The behaviour every Store backend promises, as one reusable suite: SQLite and Postgres run the
// same cases. A backend passes by opening a fresh, empty store per case that uses
// CONTRACT_AUDIT_KEY (so the suite can verify the audit chain it wrote).

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { type MasterKeyring, masterKey } from "../server/crypto/master-key.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import type { Actor, AppendRequest, Store } from "../server/store/store.ts";

/** The audit key a store under contract must be opened with. */
export const CONTRACT_AUDIT_KEY: Uint8Array = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 0xff);

export const alice: Actor = { user: "user-alice", org: "org-helpdesk", session: "sess-a1" };
export const bob: Actor = { user: "user-bob", org: "org-supplier", session: "sess-b1" };

/** The master key a store under contract is opened with (encryption at rest). */
export const CONTRACT_MASTER_KEYS: MasterKeyring = { keys: [masterKey(new Uint8Array(32).map((_, i) => (i * 11 + 5) & 0xff))] };

/** Makes `count` real Yjs updates, each inserting a line into the doc's "body" text. */
export function textUpdates(doc: Y.Doc, count: number, label = "line"): Uint8Array[] {
  const updates: Uint8Array[] = [];
  const collect = (u: Uint8Array) => updates.push(u);
  doc.on("update", collect);
  const text = doc.getText("body");
  for (let i = 0; i < count; i++) text.insert(text.length, `${label} ${i}\n`);
  doc.off("update", collect);
  return updates;
}

export function appendsOf(conversation: string, actor: Actor, payloads: Uint8Array[]): AppendRequest[] {
  return payloads.map((payload) => ({ conversation, kind: "update", actor, payload }));
}

/** Rebuilds the text a conversation holds, the way a joining reader would. */
export async function loadText(store: Store, conversation: string): Promise<string> {
  const state = await store.loadDocument(conversation);
  const doc = new Y.Doc();
  if (state.snapshot) Y.applyUpdate(doc, state.snapshot);
  for (const u of state.updates) Y.applyUpdate(doc, u);
  return doc.getText("body").toString();
}

export function runStoreContract(
  name: string,
  openStore: () => Promise<{ store: Store; cleanup: () => Promise<void> }>,
): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await openStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    it("numbers a conversation's entries from 1 without gaps, across batches", async () => {
      const doc = new Y.Doc();
      const first = await store.appendBatch(appendsOf("conv-1", alice, textUpdates(doc, 3)));
      const second = await store.appendBatch(appendsOf("conv-1", bob, textUpdates(doc, 2)));
      expect([...first, ...second].map((c) => c.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(first.every((c) => c.conversation === "conv-1")).toBe(true);
    });

    it("chains several conversations interleaved in one batch, answering in request order", async () => {
      const [a, b, c] = [new Y.Doc(), new Y.Doc(), new Y.Doc()];
      const ua = textUpdates(a, 3);
      const ub = textUpdates(b, 2);
      const uc = textUpdates(c, 1);
      const batch: AppendRequest[] = [
        ...appendsOf("conv-a", alice, [ua[0]]),
        ...appendsOf("conv-b", bob, [ub[0]]),
        ...appendsOf("conv-a", alice, [ua[1]]),
        ...appendsOf("conv-c", bob, [uc[0]]),
        ...appendsOf("conv-b", bob, [ub[1]]),
        ...appendsOf("conv-a", alice, [ua[2]]),
      ];
      const committed = await store.appendBatch(batch);
      expect(committed.map((c) => `${c.conversation}#${c.seq}`)).toEqual([
        "conv-a#1",
        "conv-b#1",
        "conv-a#2",
        "conv-c#1",
        "conv-b#2",
        "conv-a#3",
      ]);
      expect(await loadText(store, "conv-a")).toBe(a.getText("body").toString());
      expect(await loadText(store, "conv-b")).toBe(b.getText("body").toString());
      expect(await loadText(store, "conv-c")).toBe(c.getText("body").toString());
      for (const conv of ["conv-a", "conv-b", "conv-c"]) {
        expect(await verifyConversation(store, conv, CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true });
      }
    });

    it("stamps each entry with its commit time, never earlier than the entry before", async () => {
      const before = Date.now();
      const doc = new Y.Doc();
      const committed = [
        ...(await store.appendBatch(appendsOf("conv-t", alice, textUpdates(doc, 2)))),
        ...(await store.appendBatch(appendsOf("conv-t", alice, textUpdates(doc, 2)))),
      ];
      const after = Date.now();
      for (let i = 0; i < committed.length; i++) {
        expect(committed[i].at).toBeGreaterThanOrEqual(before);
        expect(committed[i].at).toBeLessThanOrEqual(after);
        if (i > 0) expect(committed[i].at).toBeGreaterThanOrEqual(committed[i - 1].at);
      }
      const entries = await store.readEntries("conv-t", 0, 10);
      expect(entries.map((e) => e.at)).toEqual(committed.map((c) => c.at));
    });

    it("tells each conversation's last activity from its head, in one lookup, creating data keys for a batch of new conversations at once", async () => {
      const ids = Array.from({ length: 30 }, (_, i) => `conv-active-${i}`);
      const docs = ids.map(() => new Y.Doc());
      // One batch, thirty conversations never seen: their data keys are created together.
      const committed = await store.appendBatch(ids.flatMap((id, i) => appendsOf(id, alice, textUpdates(docs[i], 1))));
      const activity = await store.lastActivity([...ids, "conv-never-written"]);
      expect(activity.size).toBe(ids.length);
      for (const [i, id] of ids.entries()) expect(activity.get(id)).toBe(committed[i].at);
      for (const [i, id] of ids.entries()) expect(await loadText(store, id)).toBe(docs[i].getText("body").toString());
      expect(await store.lastActivity([])).toEqual(new Map());
    });

    it("loads an unknown conversation as empty", async () => {
      expect(await store.loadDocument("conv-nobody")).toEqual({
        snapshot: null,
        snapshotCovers: 0,
        updates: [],
        updatesSinceSnapshot: 0,
        headSeq: 0,
      });
      expect(await store.readUpdatesSince("conv-nobody", 0)).toEqual([]);
      expect(await store.readEntries("conv-nobody", 0, 10)).toEqual([]);
    });

    it("round-trips a document through loadDocument", async () => {
      const doc = new Y.Doc();
      const updates = textUpdates(doc, 25);
      doc.getMap("meta").set("title", "Broken pallet, order 7731");
      await store.appendBatch(appendsOf("conv-doc", alice, updates.concat(Y.encodeStateAsUpdate(doc))));
      const state = await store.loadDocument("conv-doc");
      expect(state.headSeq).toBe(26);
      expect(state.snapshot).toBeNull();
      expect(state.updatesSinceSnapshot).toBe(26);
      expect(state.updates.map((u) => Array.from(u))).toEqual([...updates, Y.encodeStateAsUpdate(doc)].map((u) => Array.from(u)));
      const copy = new Y.Doc();
      for (const u of state.updates) Y.applyUpdate(copy, u);
      expect(copy.getText("body").toString()).toBe(doc.getText("body").toString());
      expect(copy.getMap("meta").get("title")).toBe("Broken pallet, order 7731");
    });

    it("compacts into a snapshot that loads the same content with fewer updates", async () => {
      const doc = new Y.Doc();
      await store.appendBatch(appendsOf("conv-c", alice, textUpdates(doc, 30)));
      const before = await loadText(store, "conv-c");

      const result = await store.compact("conv-c");
      expect(result).toMatchObject({ seq: 31, covers: 30 });
      expect(result?.size).toBeGreaterThan(0);

      const state = await store.loadDocument("conv-c");
      expect(state).toMatchObject({ snapshotCovers: 30, updatesSinceSnapshot: 0, updates: [], headSeq: 31 });
      expect(state.snapshot?.byteLength).toBe(result?.size);
      expect(await loadText(store, "conv-c")).toBe(before);

      // Later updates land after the snapshot; a second compaction folds the first snapshot in.
      await store.appendBatch(appendsOf("conv-c", bob, textUpdates(doc, 5, "more")));
      const later = await store.loadDocument("conv-c");
      expect(later).toMatchObject({ snapshotCovers: 30, updatesSinceSnapshot: 5, headSeq: 36 });
      expect(await loadText(store, "conv-c")).toBe(doc.getText("body").toString());

      expect(await store.compact("conv-c")).toMatchObject({ seq: 37, covers: 36 });
      expect(await loadText(store, "conv-c")).toBe(doc.getText("body").toString());
      expect((await store.loadDocument("conv-c")).updatesSinceSnapshot).toBe(0);
    });

    it("has nothing to compact without new updates", async () => {
      expect(await store.compact("conv-none")).toBeNull();
      await store.appendBatch(appendsOf("conv-once", alice, textUpdates(new Y.Doc(), 2)));
      expect(await store.compact("conv-once")).not.toBeNull();
      expect(await store.compact("conv-once")).toBeNull();
      expect((await store.loadDocument("conv-once")).headSeq).toBe(3);
    });

    it("reads the updates after a sequence number, skipping snapshot entries", async () => {
      const doc = new Y.Doc();
      const updates = textUpdates(doc, 6);
      await store.appendBatch(appendsOf("conv-r", alice, updates.slice(0, 4)));
      await store.compact("conv-r"); // seq 5
      await store.appendBatch(appendsOf("conv-r", alice, updates.slice(4)));

      const since = await store.readUpdatesSince("conv-r", 2);
      expect(since.map((u) => u.seq)).toEqual([3, 4, 6, 7]);
      expect(since.map((u) => Array.from(u.payload))).toEqual(
        [updates[2], updates[3], updates[4], updates[5]].map((u) => Array.from(u)),
      );
      expect(await store.readUpdatesSince("conv-r", 7)).toEqual([]);
    });

    it("records who did what in each audit entry", async () => {
      const doc = new Y.Doc();
      const updates = textUpdates(doc, 2);
      await store.appendBatch([...appendsOf("conv-who", alice, [updates[0]]), ...appendsOf("conv-who", bob, [updates[1]])]);
      await store.compact("conv-who");
      const entries = await store.readEntries("conv-who", 0, 10);
      expect(entries.map(({ seq, user, org, session, kind, size }) => ({ seq, user, org, session, kind, size }))).toEqual([
        { seq: 1, ...alice, kind: "update", size: updates[0].byteLength },
        { seq: 2, ...bob, kind: "update", size: updates[1].byteLength },
        { seq: 3, user: "parley:system", org: "", session: "", kind: "snapshot", size: entries[2].payload?.byteLength },
      ]);
      expect(Array.from(entries[0].payload ?? [])).toEqual(Array.from(updates[0]));
      // The snapshot entry's payload is the state it recorded, so the chain covers snapshots too.
      const state = await store.loadDocument("conv-who");
      expect(Array.from(entries[2].payload ?? [])).toEqual(Array.from(state.snapshot ?? []));
      for (const e of entries) {
        expect(e.contentHmac.byteLength).toBe(32);
        expect(e.hash.byteLength).toBe(32);
      }
      expect(Array.from(entries[1].prevHash)).toEqual(Array.from(entries[0].hash));
    });

    it("reads entries in pages", async () => {
      await store.appendBatch(appendsOf("conv-p", alice, textUpdates(new Y.Doc(), 12)));
      const first = await store.readEntries("conv-p", 0, 5);
      const second = await store.readEntries("conv-p", 5, 5);
      const last = await store.readEntries("conv-p", 10, 5);
      expect([first, second, last].map((page) => page.map((e) => e.seq))).toEqual([
        [1, 2, 3, 4, 5],
        [6, 7, 8, 9, 10],
        [11, 12],
      ]);
    });

    it("keeps a chain that verifies after many appends and after compactions", async () => {
      const doc = new Y.Doc();
      const other = new Y.Doc();
      for (let round = 0; round < 5; round++) {
        const mine = appendsOf("conv-v", round % 2 ? bob : alice, textUpdates(doc, 200, `r${round}`));
        const theirs = appendsOf("conv-w", bob, textUpdates(other, 20, `r${round}`));
        await store.appendBatch(mine.flatMap((m, i) => (i < theirs.length ? [m, theirs[i]] : [m])));
        if (round % 2 === 1) await store.compact("conv-v");
      }
      const result = await verifyConversation(store, "conv-v", CONTRACT_AUDIT_KEY, { pageSize: 64 });
      expect(result).toMatchObject({ ok: true, entries: 1002, head: { seq: 1002 } });
      expect(await verifyConversation(store, "conv-w", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 100 });
      expect(await loadText(store, "conv-v")).toBe(doc.getText("body").toString());
    });

    it("gives concurrent batches contiguous, unique sequence numbers", async () => {
      const doc = new Y.Doc();
      const batches = Array.from({ length: 20 }, (_, b) =>
        appendsOf("conv-x", b % 2 ? bob : alice, textUpdates(doc, 10, `b${b}`)).concat(
          appendsOf(`conv-y${b % 3}`, alice, textUpdates(new Y.Doc(), 2)),
        ),
      );
      const results = await Promise.all(batches.map((batch) => store.appendBatch(batch)));
      const seqs: number[] = [];
      for (const committed of results) {
        const mine = committed.filter((c) => c.conversation === "conv-x").map((c) => c.seq);
        // One batch is one transaction: its entries sit together in the log.
        expect(mine).toEqual(mine.map((_, i) => mine[0] + i));
        seqs.push(...mine);
      }
      expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(await verifyConversation(store, "conv-x", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 200 });
      // Updates may commit in any order across batches; Yjs converges regardless.
      expect(await loadText(store, "conv-x")).toBe(doc.getText("body").toString());
    });

    it("records the first claim of a client id and refuses another actor's, alone, also when batches race", async () => {
      const [first, second] = textUpdates(new Y.Doc(), 2);
      // In one batch: bob's claim after alice's is refused, the rest of the batch commits.
      const mixed = await store.appendBatch([
        { conversation: "conv-ids", kind: "update", actor: alice, payload: first, claims: [7] },
        { conversation: "conv-ids", kind: "update", actor: bob, payload: second, claims: [7, 8] },
        { conversation: "conv-ids", kind: "update", actor: bob, payload: second, claims: [8] },
      ]);
      expect(mixed.map((c) => [c.seq, c.refused])).toEqual([
        [1, undefined],
        [0, "client_id_taken"],
        [2, undefined],
      ]);
      // Later batches see the recorded owners; the owner itself may claim again.
      const later = await store.appendBatch([
        { conversation: "conv-ids", kind: "update", actor: alice, payload: second, claims: [8] },
        { conversation: "conv-ids", kind: "update", actor: alice, payload: second, claims: [7] },
      ]);
      expect(later.map((c) => c.refused ?? c.seq)).toEqual(["client_id_taken", 3]);
      // Racing batches (several connections on Postgres) claiming one fresh id: exactly one wins.
      const racing = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.appendBatch([{ conversation: "conv-race", kind: "update", actor: i % 2 ? bob : alice, payload: first, claims: [99] }]),
        ),
      );
      const winners = racing.flat().filter((c) => !c.refused);
      expect(new Set(winners.map((_, i) => (racing.flat().indexOf(winners[i]) % 2 ? "bob" : "alice"))).size).toBe(1);
      expect(await verifyConversation(store, "conv-race", CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: winners.length });
      // The owners are listed with the claiming session; destroying the conversation forgets them.
      const owners = (await store.listClientIds("conv-ids")).sort((x, y) => x.client - y.client);
      expect(owners).toEqual([
        { client: 7, user: alice.user, org: alice.org, session: alice.session },
        { client: 8, user: bob.user, org: bob.org, session: bob.session },
      ]);
      await store.destroyConversation("conv-ids");
      expect(await store.listClientIds("conv-ids")).toEqual([]);
    });

    it("rejects a batch as a whole when one request is invalid", async () => {
      const doc = new Y.Doc();
      await store.appendBatch(appendsOf("conv-bad", alice, textUpdates(doc, 2)));
      const bad = {
        conversation: "conv-bad",
        kind: "snapshot",
        actor: alice,
        payload: new Uint8Array([0]),
      } as unknown as AppendRequest;
      await expect(store.appendBatch([...appendsOf("conv-bad", alice, textUpdates(doc, 1)), bad])).rejects.toThrow();
      expect((await store.loadDocument("conv-bad")).headSeq).toBe(2);
      expect(await store.appendBatch(appendsOf("conv-bad", alice, textUpdates(doc, 1)))).toMatchObject([{ seq: 3 }]);
    });

    it("refuses ids and actors no backend can store (NUL) with invalid_request", async () => {
      const payload = textUpdates(new Y.Doc(), 1)[0];
      await expect(store.appendBatch(appendsOf("conv\0nul", alice, [payload]))).rejects.toMatchObject({ code: "invalid_request" });
      await expect(store.appendBatch(appendsOf("conv-nul", { ...alice, session: "s\0" }, [payload]))).rejects.toMatchObject({
        code: "invalid_request",
      });
      await expect(store.loadDocument("conv\0nul")).rejects.toMatchObject({ code: "invalid_request" });
      expect((await store.loadDocument("conv-nul")).headSeq).toBe(0);
    });

    it("destroys a conversation: no rows left, others untouched, idempotent", async () => {
      const [doomed, kept] = [new Y.Doc(), new Y.Doc()];
      await store.appendBatch(appendsOf("conv-doomed", alice, textUpdates(doomed, 4)));
      await store.compact("conv-doomed");
      await store.appendBatch(appendsOf("conv-doomed", bob, textUpdates(doomed, 2)));
      await store.appendBatch(appendsOf("conv-kept", bob, textUpdates(kept, 2)));

      expect(await store.destroyConversation("conv-doomed")).toBe(true);
      expect(await store.loadDocument("conv-doomed")).toEqual({
        snapshot: null,
        snapshotCovers: 0,
        updates: [],
        updatesSinceSnapshot: 0,
        headSeq: 0,
      });
      expect(await store.readEntries("conv-doomed", 0, 100)).toEqual([]);
      expect(await store.readUpdatesSince("conv-doomed", 0)).toEqual([]);
      expect(await store.compact("conv-doomed")).toBeNull();
      expect(await loadText(store, "conv-kept")).toBe("line 0\nline 1\n");
      // Idempotent: a second destruction (or one of an id never written) finds nothing.
      expect(await store.destroyConversation("conv-doomed")).toBe(false);
      expect(await store.destroyConversation("conv-never")).toBe(false);
    });

    it("refuses appends to a destroyed conversation (tombstone), in a batch with others too", async () => {
      const doc = new Y.Doc();
      await store.appendBatch(appendsOf("conv-gone", alice, textUpdates(doc, 2)));
      await store.destroyConversation("conv-gone");
      await store.destroyConversation("conv-never-written");
      const late = textUpdates(doc, 1);
      await expect(store.appendBatch(appendsOf("conv-gone", alice, late))).rejects.toMatchObject({
        code: "invalid_request",
        message: expect.stringContaining("destroyed"),
      });
      await expect(store.appendBatch(appendsOf("conv-never-written", alice, late))).rejects.toMatchObject({ code: "invalid_request" });
      const other = textUpdates(new Y.Doc(), 1);
      await expect(
        store.appendBatch([...appendsOf("conv-fine", bob, other), ...appendsOf("conv-gone", alice, late)]),
      ).rejects.toMatchObject({ code: "invalid_request" });
      // The whole batch was refused: nothing landed in the other conversation either.
      expect((await store.loadDocument("conv-fine")).headSeq).toBe(0);
      expect((await store.loadDocument("conv-gone")).headSeq).toBe(0);
      await expect(store.destroyConversation("conv\0nul")).rejects.toMatchObject({ code: "invalid_request" });
    });

    it("answers ping while open and accepts an empty batch", async () => {
      expect(await store.ping()).toBe(true);
      expect(await store.appendBatch([])).toEqual([]);
    });
  });
}
