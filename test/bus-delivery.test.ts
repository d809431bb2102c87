// Gap-free, in-order delivery per conversation, with a scripted store: the next update goes out
// at once, duplicates are dropped, a gap waits briefly for the late message and is otherwise
// filled from the store, and a resync reads what the bus may have missed. Plus the bus's binary
// message format.

import { describe, expect, it } from "vitest";
import type { BusMessage } from "../server/bus/bus.ts";
import { BusMessageError, decodeBusMessage, encodeBusMessage } from "../server/bus/bus-message.ts";
import { createLogger } from "../server/platform/logger.ts";
import { type LocalOrigin, SequencedDelivery } from "../server/realtime/sequenced-delivery.ts";
import { waitUntil } from "./helpers/wait.ts";
import { systemClock } from "../server/platform/clock.ts";

const u = (n: number) => new Uint8Array([n]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A delivery over a fake store log: seq -> payload (missing seqs act as snapshot entries). */
function setup(options: { baseline?: number; gapGraceMs?: number; log?: Map<number, Uint8Array> } = {}) {
  const log = options.log ?? new Map<number, Uint8Array>();
  const delivered: { seq: number; byte: number; local?: LocalOrigin }[] = [];
  const reads: number[] = [];
  let failReads = 0;
  const delivery = new SequencedDelivery({
    now: systemClock,
    readSince: async (_conversation, afterSeq) => {
      reads.push(afterSeq);
      await sleep(1);
      if (failReads > 0) {
        failReads--;
        throw new Error("store down");
      }
      return [...log.entries()].filter(([seq]) => seq > afterSeq).sort(([a], [b]) => a - b).map(([seq, payload]) => ({ seq, payload }));
    },
    baseline: async () => options.baseline ?? 0,
    deliver: (_conversation, seq, update, local) => delivered.push({ seq, byte: update[0], local }),
    gapGraceMs: options.gapGraceMs ?? 30,
    retryMs: 20,
    logger: createLogger("silent"),
  });
  const commit = (seq: number) => log.set(seq, u(seq));
  return { delivery, delivered, reads, log, commit, failNextReads: (n: number) => (failReads = n), seqs: () => delivered.map((d) => d.seq) };
}

describe("sequenced delivery", () => {
  it("delivers the next update at once and drops duplicates", async () => {
    const t = setup({ baseline: 3 });
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 4, u(4));
    t.delivery.offer("c", 4, u(4));
    t.delivery.offer("c", 2, u(2));
    t.delivery.offer("c", 5, u(5));
    expect(t.seqs()).toEqual([4, 5]);
    expect(t.reads).toEqual([]);
  });

  it("holds updates until the baseline is known, then delivers only what follows it", async () => {
    const t = setup({ baseline: 5 });
    t.delivery.open("c");
    t.delivery.offer("c", 5, u(5)); // already in the cache the baseline came from
    t.delivery.offer("c", 6, u(6));
    expect(t.seqs()).toEqual([]);
    await waitUntil(() => t.seqs().length === 1);
    expect(t.seqs()).toEqual([6]);
  });

  it("waits out a short reordering on the bus without reading the store", async () => {
    const t = setup({ baseline: 0, gapGraceMs: 50 });
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 2, u(2));
    t.delivery.offer("c", 3, u(3));
    expect(t.seqs()).toEqual([]);
    t.delivery.offer("c", 1, u(1));
    expect(t.seqs()).toEqual([1, 2, 3]);
    await sleep(80);
    expect(t.reads).toEqual([]);
  });

  it("fills a gap from the store, in order, before anything newer", async () => {
    const t = setup({ baseline: 0, gapGraceMs: 10 });
    for (const seq of [1, 2, 3, 4]) t.commit(seq);
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 1, u(1));
    t.delivery.offer("c", 4, u(4)); // 2 and 3 were lost on the bus
    await waitUntil(() => t.seqs().length === 4);
    t.delivery.offer("c", 5, u(5));
    expect(t.seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(t.reads).toEqual([1]);
  });

  it("keeps a buffered local commit's origin when the store read delivers it", async () => {
    const t = setup({ baseline: 0, gapGraceMs: 5 });
    for (const seq of [1, 2]) t.commit(seq);
    t.delivery.open("c");
    await sleep(0);
    const origin = { dialect: "parley", socket: null } as const; // the sender (its socket already closed)
    t.delivery.offer("c", 2, u(2), { origin }); // committed here while 1 (another node's) is in flight
    await waitUntil(() => t.seqs().length === 2);
    expect(t.delivered[0]).toMatchObject({ seq: 1, local: undefined });
    expect(t.delivered[1].local?.origin).toBe(origin);
  });

  it("reads what the bus may have missed on resync, and on a head notice ahead of it", async () => {
    const t = setup({ baseline: 0 });
    t.delivery.open("c");
    await sleep(0);
    t.commit(1);
    t.commit(2);
    t.delivery.resync("c");
    await waitUntil(() => t.seqs().length === 2);
    t.commit(3);
    t.delivery.head("c", 3);
    await waitUntil(() => t.seqs().length === 3);
    t.delivery.head("c", 2); // behind: nothing to do
    await sleep(20);
    expect(t.reads).toEqual([0, 2]);
    expect(t.seqs()).toEqual([1, 2, 3]);
  });

  it("skips sequence numbers taken by snapshot entries without reading forever", async () => {
    const t = setup({ baseline: 2, gapGraceMs: 5 });
    t.commit(4); // 3 is a snapshot entry: no update payload
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 4, u(4));
    await waitUntil(() => t.seqs().length === 1);
    t.delivery.offer("c", 5, u(5));
    await sleep(30);
    expect(t.seqs()).toEqual([4, 5]);
    expect(t.reads).toEqual([2]);
  });

  it("steps over a snapshot's seq when told, without reading the store", async () => {
    const t = setup({ baseline: 2, gapGraceMs: 50 });
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 4, u(4)); // arrives before the compacting node's notice for 3
    t.delivery.skip("c", 3);
    t.delivery.offer("c", 5, u(5));
    expect(t.seqs()).toEqual([4, 5]);
    await sleep(80);
    expect(t.reads).toEqual([]);
  });

  it("retries a failed store read until the gap is filled", async () => {
    const t = setup({ baseline: 0, gapGraceMs: 5 });
    for (const seq of [1, 2]) t.commit(seq);
    t.failNextReads(2);
    t.delivery.open("c");
    await sleep(0);
    t.delivery.offer("c", 2, u(2));
    await waitUntil(() => t.seqs().length === 2);
    expect(t.seqs()).toEqual([1, 2]);
    expect(t.reads.length).toBe(3);
  });

  it("forgets a conversation once closed", async () => {
    const t = setup({ baseline: 0 });
    t.delivery.open("c");
    await sleep(0);
    t.delivery.close("c");
    expect(t.delivery.offer("c", 1, u(1))).toBe(false);
    expect(t.delivery.tracks("c")).toBe(false);
  });
});

describe("bus message format", () => {
  it("round-trips every kind, bytes intact", () => {
    const messages: BusMessage[] = [
      { kind: "updates", conversation: "c-1", origin: "node-a", fromSeq: 2 ** 40, updates: [new Uint8Array([1, 2, 3]), new Uint8Array(0)] },
      { kind: "updates", conversation: "c-1", origin: "node-a", fromSeq: 3, updates: [new Uint8Array([4])], publishedAt: 1_796_400_000_123 },
      { kind: "head", conversation: "c-1", origin: "node-a", seq: 17 },
      { kind: "snapshot", conversation: "c-1", origin: "node-a", seq: 18 },
      { kind: "awareness", conversation: "é", origin: "n", session: "s1", update: new Uint8Array([9, 9]), who: "org\u0000ann" },
      { kind: "event-head", conversation: "", origin: "node-a", org: "org-é", cursor: 2 ** 40 },
    ];
    for (const message of messages) expect(decodeBusMessage(encodeBusMessage(message))).toEqual(message);
  });

  it("writes updates without a publish time, and every other kind, in version 1, as nodes that know only it read them", () => {
    const untimed = encodeBusMessage({ kind: "updates", conversation: "c", origin: "n", fromSeq: 1, updates: [new Uint8Array([7])] });
    const timed = encodeBusMessage({ kind: "updates", conversation: "c", origin: "n", fromSeq: 1, updates: [new Uint8Array([7])], publishedAt: 5 });
    expect([untimed[0], timed[0]]).toEqual([1, 2]);
    expect(encodeBusMessage({ kind: "head", conversation: "c", origin: "n", seq: 1 })[0]).toBe(1);
    // Version 2 is only the timed updates layout: another kind under it is refused.
    const head = encodeBusMessage({ kind: "head", conversation: "c", origin: "n", seq: 1 });
    expect(() => decodeBusMessage(new Uint8Array([2, ...head.subarray(1)]))).toThrow(BusMessageError);
  });

  it("rejects an unknown version and trailing bytes", () => {
    const bytes = encodeBusMessage({ kind: "head", conversation: "c", origin: "n", seq: 1 });
    expect(() => decodeBusMessage(new Uint8Array([9, ...bytes.subarray(1)]))).toThrow(BusMessageError);
    expect(() => decodeBusMessage(new Uint8Array([...bytes, 0]))).toThrow(BusMessageError);
    expect(() => decodeBusMessage(bytes.subarray(0, 3))).toThrow(BusMessageError);
  });
});
