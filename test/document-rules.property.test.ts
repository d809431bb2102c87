// The document rules as properties, against a real server: two organisations send arbitrary
// sequences of Yjs updates (their own messages, forgeries in every content type, nesting, deletes,
// another writer's client id, hand-made structs and delete sets, bit flips, restores) and after
// each sequence: no message names anyone but its sender, no acked message disappeared or changed,
// every acked update is visible in the merged state, the status is the directory's, and the acked
// updates merge and apply for a fresh client. Seeded; PARLEY_FUZZ_RUNS (default 12) and
// PARLEY_FUZZ_SEED for longer or repeated runs (fast-check prints the seed of a failure).

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { appendMessage, appendRetraction, ErrorCode, messagesOf, notesOf, type ReadMessage } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { inYjsLayout, type RawItem, rawUpdate, sectioned } from "./helpers/raw-updates.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp as Org, signUp } from "./helpers/sign-up.ts";
import { docFrom, UpdateWriter, updateOf } from "./helpers/update-writer.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

const RUNS = Number(process.env.PARLEY_FUZZ_RUNS ?? 12);
const SEED = process.env.PARLEY_FUZZ_SEED ? Number(process.env.PARLEY_FUZZ_SEED) : (process.env.CI === "true" ? CI_SEED : Date.now() % 2 ** 31);

let server: TestServer;
let api: ReturnType<typeof apiClient>;
let orgs: [Org, Org];

beforeAll(async () => {
  // Long runs send thousands of requests: the rate limits are not what is under test here.
  const unlimited = "100000000";
  server = await startTestServer({
    env: {
      PARLEY_COMPACT_AFTER_UPDATES: "10",
      PARLEY_CHECKPOINT_INTERVAL_SECONDS: "86400",
      PARLEY_MAX_DOC_DEPTH: "8",
      PARLEY_MAX_FRAMES_PER_SECOND: "1000000",
      PARLEY_RATE_LIMIT_ADDRESS: unlimited,
      PARLEY_RATE_LIMIT_ACCOUNT: unlimited,
      PARLEY_RATE_LIMIT_API_KEY: unlimited,
      PARLEY_RATE_LIMIT_ORGANISATION: unlimited,
    },
  });
  api = apiClient(server.httpUrl);
  orgs = [await signUp(api, "ann@helpdesk.example", "Helpdesk BV"), await signUp(api, "sam@supplier.example", "Supplier BV")];
});

afterAll(async () => {
  await server?.cleanup();
});

/** One step of a run: who acts, and what they send. */
type Step =
  | { actor: 0 | 1; kind: "message"; text: string }
  | { actor: 0 | 1; kind: "forged"; as: "any" | "map" | "json" | "embed" | "text" | "nested" | "extra" }
  | { actor: 0 | 1; kind: "notes"; at: number; insert: string; remove: number }
  | { actor: 0 | 1; kind: "meta"; depth: number; asType: boolean }
  | { actor: 0 | 1; kind: "deleteMessage"; at: number }
  | { actor: 0 | 1; kind: "retract"; at: number }
  | { actor: 0 | 1; kind: "foreignClient"; notes: boolean }
  | { actor: 0 | 1; kind: "raw"; items: RawSpec[]; deletes: [number, number, number][] }
  | { actor: 0 | 1; kind: "flip"; at: number; bit: number }
  | { actor: 0 | 1; kind: "sections"; text: string; layout: "ascending" | "split" | "twice" }
  | { actor: 0 | 1; kind: "restore"; at: number };

/** A hand-made item: client picked among the known ones (or new), positioned anywhere. */
interface RawSpec {
  client: number;
  clockOffset: number;
  root: string | null;
  origin: [number, number] | null;
  content: RawItem["content"];
}

const actor = fc.constantFrom<0 | 1>(0, 1);
const value = fc.jsonValue({ maxDepth: 3 });
const steps = fc.array(
  fc.oneof(
    fc.record({ actor, kind: fc.constant("message" as const), text: fc.string({ maxLength: 30 }) }),
    fc.record({ actor, kind: fc.constant("forged" as const), as: fc.constantFrom("any", "map", "json", "embed", "text", "nested", "extra") }),
    fc.record({ actor, kind: fc.constant("notes" as const), at: fc.nat(40), insert: fc.string({ maxLength: 8 }), remove: fc.nat(4) }),
    fc.record({ actor, kind: fc.constant("meta" as const), depth: fc.integer({ min: 1, max: 12 }), asType: fc.boolean() }),
    fc.record({ actor, kind: fc.constant("deleteMessage" as const), at: fc.nat(10) }),
    fc.record({ actor, kind: fc.constant("retract" as const), at: fc.nat(10) }),
    fc.record({ actor, kind: fc.constant("foreignClient" as const), notes: fc.boolean() }),
    fc.record({
      actor,
      kind: fc.constant("raw" as const),
      items: fc.array(
        fc.record({
          client: fc.nat(3),
          clockOffset: fc.integer({ min: -2, max: 2 }),
          root: fc.option(fc.constantFrom("messages", "notes", "meta", "free"), { nil: null }),
          origin: fc.option(fc.tuple(fc.nat(3), fc.nat(30)), { nil: null }),
          content: fc.oneof(
            fc.record({ any: fc.array(value, { minLength: 1, maxLength: 2 }) }),
            fc.record({ json: fc.array(value, { minLength: 1, maxLength: 2 }) }),
            fc.record({ string: fc.string({ minLength: 1, maxLength: 4 }) }),
            fc.record({ embed: value }),
            fc.record({ type: fc.nat(6) }),
            fc.record({ deleted: fc.integer({ min: 1, max: 3 }) }),
          ),
        }),
        { maxLength: 3 },
      ),
      deletes: fc.array(fc.tuple(fc.nat(3), fc.nat(30), fc.nat(4)), { maxLength: 2 }),
    }),
    fc.record({ actor, kind: fc.constant("flip" as const), at: fc.nat(10_000), bit: fc.nat(7) }),
    fc.record({ actor, kind: fc.constant("sections" as const), text: fc.string({ minLength: 1, maxLength: 4 }), layout: fc.constantFrom("ascending", "split", "twice") }),
    fc.record({ actor, kind: fc.constant("restore" as const), at: fc.nat(100) }),
  ),
  { minLength: 1, maxLength: 14 },
);

/** What a run knows: the acked updates (as sent) and the messages they added, by sender. */
interface Run {
  conversation: string;
  writers: [UpdateWriter, UpdateWriter];
  clientIds: [number, number];
  /** The server's state as far as the run knows it (acked updates merged; refreshed after restores). */
  state: Uint8Array;
  acked: Uint8Array[];
  /** Message entries acked through a clean message step, by id, with their sender: must stay listed. */
  written: Map<string, { entry: unknown; user: string; org: string }>;
  /** Every entry any acked update carried, by id, with its sender: what may be listed, under whom. */
  carried: Map<string, { user: string; org: string }[]>;
  /** Valid updates sent so far (bit flips start from them). */
  valid: Uint8Array[];
}

const forgedEntry = (victim: Org, id: string) => ({ id, authorUser: victim.userId, authorOrg: victim.orgId, text: "forged", createdAt: 1 });

async function serverState(run: Run): Promise<{ state: Uint8Array; status: string; headSeq: number }> {
  const { headSeq } = (await api("GET", `/v1/conversations/${run.conversation}/history?seq=0`, { token: orgs[0].token })).body as { headSeq: number };
  const past = await api("GET", `/v1/conversations/${run.conversation}/history?seq=${headSeq}`, { token: orgs[0].token });
  expect(past.status).toBe(200);
  return { state: Buffer.from(past.body.state as string, "base64"), status: past.body.status as string, headSeq };
}

/** Updates sent, by step kind and answer (printed at the end, for the record of what ran). */
const tally = new Map<string, number>();
let currentKind = "";

/** Sends an update; records it when acked; `mustRefuse` asserts the rules refused it. */
async function send(run: Run, who: 0 | 1, update: Uint8Array, mustRefuse?: number): Promise<boolean> {
  const answer = await run.writers[who].send(update);
  const key = `${currentKind} ${answer.ok ? "acked" : `refused ${answer.code}`}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  if (mustRefuse !== undefined) expect(answer, "an update the rules forbid was acked").toMatchObject({ ok: false, code: mustRefuse });
  if (!answer.ok) return false;
  run.acked.push(update);
  for (const struct of Y.decodeUpdate(update).structs) {
    if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentAny)) continue;
    for (const value of struct.content.arr) {
      const id = (value as { id?: unknown } | null)?.id;
      if (typeof id === "string") run.carried.set(id, [...(run.carried.get(id) ?? []), { user: orgs[who].userId, org: orgs[who].orgId }]);
    }
  }
  // In Yjs's layout first, as the server stores it: merged as sent, a hand-made layout (the raw
  // and sections steps) would lose structs from the run's own view of the document.
  run.state = Y.mergeUpdates([run.state, inYjsLayout(update)]);
  return true;
}

async function step(run: Run, s: Step): Promise<void> {
  currentKind = s.kind;
  const me = orgs[s.actor];
  const other = orgs[1 - s.actor];
  const doc = () => docFrom(run.state, run.clientIds[s.actor]);
  switch (s.kind) {
    case "message": {
      const d = doc();
      const id = `m${run.acked.length}-${s.actor}-${Math.random().toString(36).slice(2, 8)}`;
      const entry = { id, authorUser: me.userId, authorOrg: me.orgId, text: s.text, createdAt: 1 };
      const update = updateOf(d, () => appendMessage(d, entry));
      run.valid.push(update);
      if (await send(run, s.actor, update)) run.written.set(id, { entry, user: me.userId, org: me.orgId });
      return;
    }
    case "forged": {
      const d = doc();
      const entry = forgedEntry(other, `f${run.acked.length}`);
      const client = run.clientIds[s.actor];
      const clock = Y.getState(d.store, client);
      const update =
        s.as === "any"
          ? updateOf(d, () => appendMessage(d, entry))
          : s.as === "map"
            ? updateOf(d, () => {
                const map = new Y.Map<unknown>();
                for (const [k, v] of Object.entries(entry)) map.set(k, v);
                messagesOf(d).push([map as never]);
              })
            : s.as === "nested"
              ? updateOf(d, () => messagesOf(d).push([[entry] as never]))
              : s.as === "extra"
                ? updateOf(d, () => messagesOf(d).push([{ ...entry, authorUser: me.userId, authorOrg: me.orgId, extra: 1 } as never]))
                : rawUpdate([
                    {
                      client,
                      clock,
                      position: { root: "messages" },
                      content: s.as === "json" ? { json: [entry] } : s.as === "embed" ? { embed: entry } : { string: "text in messages" },
                    },
                  ]);
      await send(run, s.actor, update, ErrorCode.InvalidMessage);
      return;
    }
    case "notes": {
      const d = doc();
      const text = notesOf(d);
      const at = Math.min(s.at, text.length);
      const remove = Math.min(s.remove, text.length - at);
      if (s.insert === "" && remove === 0) return;
      const update = updateOf(d, () => {
        if (remove > 0) text.delete(at, remove);
        if (s.insert) text.insert(at, s.insert);
      });
      run.valid.push(update);
      await send(run, s.actor, update);
      return;
    }
    case "meta": {
      const d = doc();
      const limit = server.server.config.limits.document.maxDepth;
      const update = updateOf(d, () => {
        if (s.asType) {
          let map = d.getMap<unknown>("meta");
          for (let i = 0; i < s.depth; i++) {
            const next = new Y.Map<unknown>();
            map.set("k", next);
            map = next;
          }
        } else {
          let nested: unknown = "leaf";
          for (let i = 0; i < s.depth - 1; i++) nested = { k: nested };
          d.getMap("meta").set("status", s.depth === 1 ? "closed" : nested);
        }
      });
      // A shared type at depth d nests d deep; a value of d-1 objects in a root map, d-1.
      const tooDeep = s.asType ? s.depth > limit : s.depth - 1 > limit;
      const ok = await send(run, s.actor, update, tooDeep ? ErrorCode.DocumentLimit : undefined);
      if (!tooDeep) expect(ok).toBe(true);
      return;
    }
    case "deleteMessage": {
      const d = doc();
      const list = messagesOf(d);
      if (list.length === 0) return;
      await send(
        run,
        s.actor,
        updateOf(d, () => list.delete(s.at % list.length, 1)),
        ErrorCode.InvalidMessage,
      );
      return;
    }
    case "retract": {
      const mine = [...run.written.values()].filter((w) => w.user === me.userId);
      if (mine.length === 0) return;
      const target = mine[s.at % mine.length].entry as { id: string };
      const d = doc();
      const update = updateOf(d, () =>
        appendRetraction(d, { id: `r${run.acked.length}`, authorUser: me.userId, authorOrg: me.orgId, retracts: target.id, createdAt: 2 }),
      );
      expect(await send(run, s.actor, update)).toBe(true);
      return;
    }
    case "foreignClient": {
      // Only once the other side has written under its client id does that id belong to it.
      const theirs = run.clientIds[1 - s.actor];
      if (Y.getState(docFrom(run.state).store, theirs) === 0) return;
      const d = docFrom(run.state, theirs);
      const update = s.notes
        ? updateOf(d, () => notesOf(d).insert(0, "squat"))
        : updateOf(d, () => appendMessage(d, { id: `s${run.acked.length}`, authorUser: me.userId, authorOrg: me.orgId, text: "squat", createdAt: 1 }));
      await send(run, s.actor, update, ErrorCode.ClientIdTaken);
      return;
    }
    case "raw": {
      const known = docFrom(run.state);
      // Own id, the other side's once it has used it (a squat), a fresh one, and one in the document.
      const theirs = run.clientIds[1 - s.actor];
      const clients = [
        run.clientIds[s.actor],
        Y.getState(known.store, theirs) > 0 ? theirs : run.clientIds[s.actor],
        9_000_000 + s.actor,
        ...[...known.store.clients.keys()].slice(0, 1),
      ];
      const items: RawItem[] = [];
      const next = new Map<number, number>();
      for (const spec of s.items) {
        const client = clients[spec.client % clients.length];
        const clock = next.get(client) ?? Math.max(0, Y.getState(known.store, client) + spec.clockOffset);
        const origin = spec.origin ? ([clients[spec.origin[0] % clients.length], spec.origin[1]] as [number, number]) : null;
        const position = spec.root !== null || !origin ? { root: spec.root ?? "free" } : { origin };
        const item: RawItem = { client, clock, position, content: spec.content };
        // Items of one client in one update are consecutive.
        const length = "any" in spec.content ? spec.content.any.length : "json" in spec.content ? spec.content.json.length : "string" in spec.content ? spec.content.string.length : "deleted" in spec.content ? spec.content.deleted : 1;
        if (next.has(client) && next.get(client) !== clock) continue;
        next.set(client, clock + length);
        items.push(item);
      }
      const deletes = s.deletes.map(([c, clock, len]) => ({ client: clients[c % clients.length], ranges: [[clock, len]] as [number, number][] }));
      let update: Uint8Array;
      try {
        update = rawUpdate(items, deletes);
      } catch {
        return;
      }
      await send(run, s.actor, update);
      return;
    }
    case "flip": {
      if (run.valid.length === 0) return;
      const base = run.valid[s.at % run.valid.length];
      const flipped = Uint8Array.from(base);
      flipped[s.at % flipped.length] ^= 1 << s.bit;
      await send(run, s.actor, flipped);
      return;
    }
    case "sections": {
      // Valid content of two client ids (one's own and a fresh one), in a layout no Yjs encoder
      // writes: the lower client first, or a client in two sections.
      const d = doc();
      const freshId = 9_100_000 + 2 * run.acked.length + s.actor;
      const fresh = docFrom(run.state, freshId);
      const both = Y.mergeUpdates([
        updateOf(d, () => {
          notesOf(d).insert(0, s.text);
          d.getMap("meta").set("by", me.userId);
        }),
        updateOf(fresh, () => fresh.getMap("meta").set(`fresh${freshId}`, 1)),
      ]);
      const own = run.clientIds[s.actor];
      const count = (client: number) => Y.decodeUpdate(both).structs.filter((x) => x.id.client === client).length;
      const [low, high] = own < freshId ? [own, freshId] : [freshId, own];
      const layout: [number, number][] =
        s.layout === "ascending"
          ? [
              [low, count(low)],
              [high, count(high)],
            ]
          : s.layout === "split"
            ? [
                [own, 1],
                [freshId, count(freshId)],
                [own, count(own) - 1],
              ]
            : [
                [freshId, count(freshId)],
                [own, 1],
                [own, count(own) - 1],
              ];
      expect(await send(run, s.actor, sectioned(both, layout))).toBe(true);
      return;
    }
    case "restore": {
      const { headSeq } = await serverState(run);
      const restored = await api("POST", `/v1/conversations/${run.conversation}/restore`, { token: me.token, body: { seq: s.at % (headSeq + 1) } });
      expect([200, 422]).toContain(restored.status);
      // The restore is the server's own update: the run's view of the state starts from the server's.
      run.state = (await serverState(run)).state;
      return;
    }
  }
}

async function checkInvariants(run: Run): Promise<void> {
  const { state, status } = await serverState(run);
  // The API's status is the directory's.
  const described = await api("GET", `/v1/conversations/${run.conversation}`, { token: orgs[1].token });
  expect(status).toBe(described.body.status);
  const listed = (await api("GET", `/v1/conversations/${run.conversation}/messages`, { token: orgs[1].token })).body.items as unknown as ReadMessage[];
  // No stored message names anyone but its sender; no acked message disappeared or changed.
  for (const message of listed) {
    const senders = run.carried.get(message.id) ?? [];
    expect(senders, `message ${message.id} names someone who never sent it`).toContainEqual({ user: message.authorUser, org: message.authorOrg });
  }
  const shown = listed.map(({ retracted: _retracted, ...message }) => message);
  for (const [id, { entry }] of run.written) expect(shown, `acked message ${id} disappeared or changed`).toContainEqual(entry);
  // Every acked update is visible in the merged state, which a fresh client applies completely.
  const fresh = new Y.Doc();
  Y.applyUpdate(fresh, state);
  expect(fresh.store.pendingStructs).toBeNull();
  expect(fresh.store.pendingDs).toBeNull();
  const vector = Y.encodeStateVector(fresh);
  for (const update of run.acked) expect(Y.decodeUpdate(Y.diffUpdate(update, vector)).structs).toEqual([]);
  // The log's updates, one by one in their order and merged, apply completely for a fresh client.
  // The log, not only the updates the run sent: a restore is the server's own update, and a
  // client's later edit may build on what it re-added (seed 1066731413 typed after restored text).
  const logged = await loggedUpdates(run.conversation);
  for (const update of run.acked) expect(Y.decodeUpdate(Y.diffUpdate(update, Y.encodeStateVectorFromUpdate(Y.mergeUpdates([EMPTY, ...logged])))).structs).toEqual([]);
  const replay = new Y.Doc();
  for (const update of logged) Y.applyUpdate(replay, update);
  expect(replay.store.pendingStructs).toBeNull();
  expect(replay.store.pendingDs).toBeNull();
  const merged = new Y.Doc();
  Y.applyUpdate(merged, Y.mergeUpdates([EMPTY, ...logged]));
  expect(merged.store.pendingStructs).toBeNull();
  expect(merged.store.pendingDs).toBeNull();
}

const EMPTY = new Uint8Array([0, 0]);

/** Every update entry of the conversation's log, in sequence order (snapshots fold nothing away). */
async function loggedUpdates(conversation: string): Promise<Uint8Array[]> {
  const updates: Uint8Array[] = [];
  for (let after = 0; ; ) {
    const entries = await server.server.store.readEntries(conversation, after, 500);
    for (const entry of entries) if (entry.kind === "update" && entry.payload) updates.push(entry.payload);
    if (entries.length < 500) return updates;
    after = entries[entries.length - 1].seq;
  }
}

describe("document rules, as properties", { timeout: 120_000 }, () => {
  it(`hold for arbitrary updates from two organisations (seed ${SEED}, ${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(steps, async (sequence) => {
        const created = await api("POST", "/v1/conversations", { token: orgs[0].token, body: { title: "Fuzz", participants: [{ organisation: orgs[1].orgId }] } });
        const conversation = created.body.id as string;
        const writers: [UpdateWriter, UpdateWriter] = [
          await UpdateWriter.join(server.url, orgs[0].token, conversation),
          await UpdateWriter.join(server.url, orgs[1].token, conversation),
        ];
        const run: Run = {
          conversation,
          writers,
          clientIds: [new Y.Doc().clientID, new Y.Doc().clientID],
          state: new Uint8Array([0, 0]),
          acked: [],
          written: new Map(),
          carried: new Map(),
          valid: [],
        };
        try {
          for (const s of sequence) await step(run, s);
          await checkInvariants(run);
        } finally {
          for (const w of writers) w.close();
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`document rules property: seed ${SEED}, ${RUNS} runs; updates by step and answer:`, Object.fromEntries([...tally].sort()));
  });
});
