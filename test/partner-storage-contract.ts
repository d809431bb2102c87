// What every backend of partner events and webhooks promises, as one reusable suite: the SQLite
// files of one node and the shared Postgres run the same cases. A backend passes by opening two
// handles on one fresh location per case; on Postgres they are two nodes' pools, on SQLite two
// worker threads on the same files, so the concurrent cases are races between writers.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventType } from "../protocol/index.ts";
import type { NewEvent, StoredEvent } from "../server/events/event-store.ts";
import type { PartnerStorage } from "../server/webhooks/partner-storage.ts";
import type { EndpointRecord } from "../server/webhooks/webhook-store.ts";

/** Opens the backend's storage `count` times on one fresh location; `cleanup` closes and removes it. */
export interface ContractBackend {
  open(): Promise<{ handles: PartnerStorage[]; cleanup(): Promise<void> }>;
}

let serial = 0;
function event(orgs: string[], extra: Partial<NewEvent> = {}): NewEvent {
  serial++;
  return { id: `evt_${serial}_${Math.random().toString(36).slice(2)}`, type: "message.created" as EventType, conversation: "conv-1", occurredAt: 1000 + serial, data: { n: serial }, orgs, ...extra };
}

function endpoint(id: string, orgId = "org-a"): EndpointRecord {
  return {
    id,
    orgId,
    url: "https://partner.example/hook",
    description: "first",
    eventTypes: [],
    status: "enabled",
    createdAt: 1,
    createdBy: "user-1",
    disabledAt: null,
    disabledReason: null,
    secretSealed: new Uint8Array([1, 2, 3, 250]),
    delivery: { cursor: 0, headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null, failingSince: null, lastSuccessAt: null, lastError: null },
  };
}

const cursors = (events: StoredEvent[]) => events.map((e) => e.cursor);

export function runPartnerStorageContract(name: string, backend: ContractBackend): void {
  describe(`partner storage contract: ${name}`, () => {
    let a: PartnerStorage;
    let b: PartnerStorage;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      const opened = await backend.open();
      [a, b] = opened.handles as [PartnerStorage, PartnerStorage];
      cleanup = opened.cleanup;
    });
    afterEach(async () => {
      await cleanup();
    });

    it("gives each organisation its own gap-free cursors and reads them back as JSON", async () => {
      const appended = await a.events.append([event(["org-a", "org-b"]), event(["org-a"]), event(["org-b", "org-b"])], 5000);
      expect(appended.map((e) => e.cursors)).toEqual([
        [
          { org: "org-a", cursor: 1 },
          { org: "org-b", cursor: 1 },
        ],
        [{ org: "org-a", cursor: 2 }],
        [{ org: "org-b", cursor: 2 }],
      ]);
      const read = await b.events.read("org-a", 0, 10);
      expect(read.status).toBe("ok");
      if (read.status !== "ok") return;
      expect(read.head).toBe(2);
      expect(cursors(read.events)).toEqual([1, 2]);
      const first = JSON.parse(read.events[0]?.json ?? "{}") as Record<string, unknown>;
      expect(first).toMatchObject({ cursor: 1, type: "message.created", conversation: "conv-1" });
      expect(await b.events.head("org-b")).toBe(2);
      expect(await b.events.head("org-none")).toBe(0);
      expect(await b.events.read("org-a", 3, 10)).toEqual({ status: "ahead", head: 2 });
      const filtered = await b.events.read("org-a", 0, 10, ["conversation.created" as EventType]);
      expect(filtered.status === "ok" && filtered.events).toEqual([]);
    });

    it("records a `once` subject and a notes hash once, whichever node tries", async () => {
      const once = { conversation: "conv-9", once: "message:m1" };
      expect(await a.events.append([event(["org-a"], once)], 1)).toHaveLength(1);
      expect(await b.events.append([event(["org-a"], once)], 1)).toHaveLength(0);
      const notes = { conversation: "conv-9", notesHash: "h1" };
      expect(await b.events.append([event(["org-a"], notes)], 1)).toHaveLength(1);
      expect(await a.events.append([event(["org-a"], notes)], 1)).toHaveLength(0);
      expect(await a.events.append([event(["org-a"], { ...notes, notesHash: "h2" })], 1)).toHaveLength(1);
      expect(await b.events.derivationState("conv-9")).toEqual({ subjects: ["message:m1"], notesHash: "h2" });
    });

    it("prunes a prefix and reports reads behind it as expired", async () => {
      await a.events.append([event(["org-a"]), event(["org-a"])], 100);
      await a.events.append([event(["org-a"])], 900);
      expect(await b.events.prune(500)).toBe(2);
      expect(await a.events.read("org-a", 0, 10)).toEqual({ status: "expired", prunedThrough: 2, head: 3 });
      const rest = await a.events.read("org-a", 2, 10);
      expect(rest.status === "ok" && cursors(rest.events)).toEqual([3]);
    });

    it("keeps derivation marks: dirty until derived up to the newest commit", async () => {
      await a.events.markDirty([
        ["conv-1", 5],
        ["conv-2", 3],
      ]);
      await b.events.markDirty([["conv-1", 4]]);
      await b.events.markDerived([["conv-2", 3]]);
      await a.events.markDerived([["conv-1", 4]]);
      expect(await a.events.listDirty()).toEqual([{ conversation: "conv-1", seq: 5 }]);
      await b.events.markDerived([["conv-1", 5]]);
      expect(await a.events.listDirty()).toEqual([]);
      // Several watermarks move in one call (the derivation flushes them together).
      await a.events.markDerived([
        ["conv-2", 7],
        ["conv-1", 6],
      ]);
      const derived = await b.events.listDerived();
      expect(derived.filter((d) => d.conversation.startsWith("conv-")).sort((x, y) => x.conversation.localeCompare(y.conversation))).toEqual([
        { conversation: "conv-1", seq: 6 },
        { conversation: "conv-2", seq: 7 },
      ]);
    });

    it("never lets a reader pass a cursor committed late by a concurrent writer", async () => {
      const perWriter = 15;
      let writing = true;
      const seen: number[] = [];
      const follow = (async () => {
        let after = 0;
        while (writing || after < perWriter * 2) {
          const read = await b.events.read("org-a", after, 100);
          if (read.status !== "ok") throw new Error(`unexpected ${read.status}`);
          for (const e of read.events) {
            // Every page continues exactly where the last one stopped: no skipped cursor.
            expect(e.cursor).toBe(after + 1);
            after = e.cursor;
            seen.push(e.cursor);
          }
          if (read.events.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      await Promise.all([
        ...Array.from({ length: perWriter }, () => a.events.append([event(["org-b", "org-a"])], 1)),
        ...Array.from({ length: perWriter }, () => b.events.append([event(["org-a", "org-b"])], 1)),
      ]);
      writing = false;
      await follow;
      expect(seen).toEqual(Array.from({ length: perWriter * 2 }, (_, i) => i + 1));
      expect(await a.events.head("org-b")).toBe(perWriter * 2);
    });

    it("stores endpoints, partial edits, status changes and deletion", async () => {
      await a.webhooks.createEndpoint(endpoint("ep-1"));
      await a.webhooks.createEndpoint(endpoint("ep-2", "org-b"));
      expect(await b.webhooks.getEndpoint("ep-1")).toEqual(endpoint("ep-1"));
      await b.webhooks.updateEndpoint("ep-1", { eventTypes: ["message.created" as EventType] });
      await b.webhooks.updateEndpoint("ep-1", { description: null, secretSealed: new Uint8Array([9]) });
      const edited = await a.webhooks.getEndpoint("ep-1");
      expect(edited).toMatchObject({ url: "https://partner.example/hook", description: null, eventTypes: ["message.created"] });
      expect(edited?.secretSealed).toEqual(new Uint8Array([9]));
      await a.webhooks.setStatus("ep-2", "disabled", "by hand", 77);
      expect((await b.webhooks.listEnabledEndpoints()).map((e) => e.id)).toEqual(["ep-1"]);
      expect(await b.webhooks.getEndpoint("ep-2")).toMatchObject({ status: "disabled", disabledAt: 77, disabledReason: "by hand" });
      expect((await a.webhooks.listEndpoints("org-b")).map((e) => e.id)).toEqual(["ep-2"]);
      expect(await b.webhooks.deleteEndpoint("ep-2")).toBe(true);
      expect(await b.webhooks.deleteEndpoint("ep-2")).toBe(false);
      expect(await a.webhooks.getEndpoint("ep-2")).toBeNull();
    });

    it("records attempts and outcomes, parks dead letters and replays them", async () => {
      await a.webhooks.createEndpoint(endpoint("ep-1"));
      const attempt = { endpointId: "ep-1", at: 10, eventId: "evt_x", cursor: 3, attempt: 4, ok: false, status: 500, error: "HTTP 500", durationMs: 12, excerpt: "oops" };
      const state = { cursor: 3, headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null, failingSince: 1, lastSuccessAt: null, lastError: "HTTP 500" };
      const park = { id: "dlq_1", endpointId: "ep-1", cursor: 3, eventId: "evt_x", eventType: "message.created" as EventType, eventJson: "{}", attempts: 4, parkedAt: 10, lastError: "HTTP 500" };
      await b.webhooks.recordOutcome({ endpointId: "ep-1", attempt, state, park });
      expect(await a.webhooks.listAttempts("ep-1", 10)).toEqual([attempt]);
      expect((await a.webhooks.getEndpoint("ep-1"))?.delivery).toEqual(state);
      // The cursor never goes back.
      await a.webhooks.recordOutcome({ endpointId: "ep-1", attempt: { ...attempt, at: 11, ok: true, status: 200 }, state: { ...state, cursor: 2 } });
      expect((await b.webhooks.getEndpoint("ep-1"))?.delivery.cursor).toBe(3);
      expect((await a.webhooks.listAttempts("ep-1", 1))[0]?.ok).toBe(true);
      expect(await b.webhooks.nextReplay("ep-1")).toBeNull();
      expect(await a.webhooks.requestReplay("ep-1", ["dlq_1", "dlq_unknown"], 20)).toBe(1);
      expect(await a.webhooks.requestReplay("ep-1", null, 21)).toBe(0);
      expect(await b.webhooks.nextReplay("ep-1")).toMatchObject({ id: "dlq_1", replayRequestedAt: 20, replayedAt: null });
      await b.webhooks.recordOutcome({ endpointId: "ep-1", attempt: { ...attempt, at: 30, ok: true }, state, replayed: "dlq_1" });
      expect(await a.webhooks.listDeadLetters("ep-1", 10)).toMatchObject([{ id: "dlq_1", replayedAt: 30, replayRequestedAt: null }]);
      // An event forgotten while its delivery was in flight (its side deleted, the conversation
      // destroyed) gets no copy back when the attempt is recorded late: no attempt, no dead letter.
      await a.webhooks.createEndpoint(endpoint("ep-b", "org-b"));
      expect(await a.webhooks.forgetEvents(["evt_late"], "org-a", Date.now())).toBe(0);
      const late = { ...attempt, eventId: "evt_late", at: 40 };
      const latePark = { ...park, id: "dlq_late", eventId: "evt_late" };
      await b.webhooks.recordOutcome({ endpointId: "ep-1", attempt: late, state: { ...state, cursor: 4 }, park: latePark });
      expect((await a.webhooks.listAttempts("ep-1", 10)).filter((x) => x.eventId === "evt_late")).toEqual([]);
      expect((await a.webhooks.listDeadLetters("ep-1", 10)).map((l) => l.id)).not.toContain("dlq_late");
      expect((await a.webhooks.getEndpoint("ep-1"))?.delivery.cursor).toBe(4);
      // ...only at the organisation whose side went: another's endpoint still records it.
      await b.webhooks.recordOutcome({ endpointId: "ep-b", attempt: { ...late, endpointId: "ep-b" }, state });
      expect(await a.webhooks.listAttempts("ep-b", 10)).toHaveLength(1);
      // Destroyed (every organisation): no endpoint records it.
      await a.webhooks.forgetEvents(["evt_gone"], null, Date.now());
      await b.webhooks.recordOutcome({ endpointId: "ep-b", attempt: { ...late, endpointId: "ep-b", eventId: "evt_gone" }, state });
      expect((await a.webhooks.listAttempts("ep-b", 10)).map((x) => x.eventId)).toEqual(["evt_late"]);
      // A deleted endpoint keeps no orphans, even from an attempt that was in flight.
      await a.webhooks.deleteEndpoint("ep-1");
      await b.webhooks.recordOutcome({ endpointId: "ep-1", attempt, state });
      expect(await a.webhooks.listAttempts("ep-1", 10)).toEqual([]);
    });
  });
}
