// The Redis bus against a real Redis: two buses stand for two nodes. Messages cross with their
// bytes, sequence numbers and origin intact; a node ignores its own; subscriptions follow local
// interest by reference count; and a killed connection is reported (resync, head) so the node can
// read what it missed from the store.

import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BusMessage } from "../server/bus/bus.ts";
import { RedisBus } from "../server/bus/redis-bus.ts";
import { createLogger } from "../server/platform/logger.ts";
import { requireRedis } from "./helpers/services.ts";
import { waitUntil } from "./helpers/wait.ts";
import { systemClock } from "../server/platform/clock.ts";

const redisUrl = await requireRedis();
/** Unique per run, so parallel runs sharing one Redis never see each other's messages. */
const prefix = `parley-test:${randomBytes(4).toString("hex")}:`;

/** A bus with everything it reports recorded. */
function node(name: string) {
  const received: BusMessage[] = [];
  const resyncs: string[][] = [];
  const bus = new RedisBus({
    url: redisUrl ?? "",
    nodeId: `${prefix}${name}`,
    channelPrefix: prefix,
    sharded: false,
    logger: createLogger("silent"),
    now: systemClock,
  });
  bus.setHandler({ message: (m) => received.push(m), resync: (c) => resyncs.push([...c]) });
  return { bus, received, resyncs, resynced: (c: string) => resyncs.some((r) => r.includes(c)) };
}

describe.skipIf(!redisUrl)("Redis bus", () => {
  let admin: Redis;
  const open: RedisBus[] = [];

  function start(name: string) {
    const n = node(name);
    open.push(n.bus);
    return n;
  }

  /** Kills this run's connections whose name ends with `suffix` (e.g. "a:sub"); returns how many. */
  async function kill(suffix: string): Promise<number> {
    const list = (await admin.client("LIST")) as string;
    const ids = list
      .split("\n")
      .filter((line) => line.includes(` name=parley:${prefix}${suffix} `))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await admin.client("KILL", "ID", id);
    return ids.length;
  }

  beforeAll(() => {
    admin = new Redis(redisUrl ?? "");
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    await admin.quit();
  });

  it("carries a committed update to the other node with its bytes, seq, origin and publish time", async () => {
    const a = start("a");
    const b = start("b");
    b.bus.subscribe("conv");
    await waitUntil(() => b.resynced("conv") && a.bus.health().state === "ok");
    const update = new Uint8Array([0, 255, 1, 2, 3]);
    const before = Date.now();
    a.bus.publishUpdate("conv", 7, update);
    await waitUntil(() => b.received.length === 1);
    expect(b.received[0]).toEqual({ kind: "updates", conversation: "conv", origin: `${prefix}a`, fromSeq: 7, updates: [update], publishedAt: expect.any(Number) });
    const { publishedAt } = b.received[0] as { publishedAt: number };
    expect(publishedAt).toBeGreaterThanOrEqual(before);
    expect(publishedAt).toBeLessThanOrEqual(Date.now());
  });

  it("carries partner event stream heads to the other nodes on the node-wide channel, not back to itself", async () => {
    const a = start("a");
    const b = start("b");
    const heardByA: [string, number][] = [];
    const heardByB: [string, number][] = [];
    a.bus.onEventHead((org, cursor) => heardByA.push([org, cursor]));
    b.bus.onEventHead((org, cursor) => heardByB.push([org, cursor]));
    a.bus.subscribe("conv");
    b.bus.subscribe("conv");
    await waitUntil(() => a.resynced("conv") && b.resynced("conv") && a.bus.health().state === "ok");
    a.bus.publishEventHead("org-1", 2 ** 40);
    await waitUntil(() => heardByB.length === 1);
    expect(heardByB).toEqual([["org-1", 2 ** 40]]);
    expect(b.received).toEqual([]);
    // Barrier: b's head, published after Redis handed a's to b, reaches a after anything of a's
    // own would have (one subscriber connection, delivered in order). Only b's arrives.
    b.bus.publishEventHead("org-2", 1);
    await waitUntil(() => heardByA.length >= 1);
    expect(heardByA).toEqual([["org-2", 1]]);
  });

  it("ignores its own messages", async () => {
    const a = start("a");
    const b = start("b");
    a.bus.subscribe("conv");
    b.bus.subscribe("conv");
    await waitUntil(() => a.resynced("conv") && b.resynced("conv") && a.bus.health().state === "ok");
    a.bus.publishUpdate("conv", 1, new Uint8Array([1]));
    await waitUntil(() => b.received.length === 1);
    // Barrier: b's update, published after Redis handed a's to b, reaches a after a's own would
    // have (in order on a's subscriber connection). Only b's arrives.
    b.bus.publishUpdate("conv", 2, new Uint8Array([2]));
    await waitUntil(() => a.received.length >= 1);
    expect(a.received.map((m) => m.origin)).toEqual([`${prefix}b`]);
  });

  it("sends one group commit's consecutive updates as one message", async () => {
    const a = start("a");
    const b = start("b");
    b.bus.subscribe("conv");
    await waitUntil(() => b.resynced("conv") && a.bus.health().state === "ok");
    for (let seq = 10; seq < 15; seq++) a.bus.publishUpdate("conv", seq, new Uint8Array([seq]));
    a.bus.publishUpdate("conv", 20, new Uint8Array([20])); // another node wrote 15..19: a new message
    await waitUntil(() => b.received.length === 2);
    expect(b.received.map((m) => (m.kind === "updates" ? [m.fromSeq, m.updates.length] : m.kind))).toEqual([
      [10, 5],
      [20, 1],
    ]);
  });

  it("subscribes on the first local interest and unsubscribes after the last", async () => {
    const a = start("a");
    const b = start("b");
    await waitUntil(() => a.bus.health().state === "ok" && b.bus.health().state === "ok");
    const channel = `${prefix}c:conv`;
    const subscribers = async () => Number(((await admin.pubsub("NUMSUB", channel)) as [string, number])[1]);
    b.bus.subscribe("conv");
    b.bus.subscribe("conv");
    await waitUntil(() => b.resynced("conv"));
    expect(await subscribers()).toBe(1);
    b.bus.unsubscribe("conv");
    a.bus.publishUpdate("conv", 1, new Uint8Array([1]));
    await waitUntil(() => b.received.length === 1);
    b.bus.unsubscribe("conv");
    await waitUntil(() => b.bus.subscriptions === 0);
    await waitUntil(async () => (await subscribers()) === 0, { what: "the channel has no subscriber left" });
    // Barrier: a marker a publishes after the update, on a channel b still listens to, reaches b
    // after the update would have (one publisher connection, one subscriber connection, in order).
    b.bus.subscribe("marker");
    await waitUntil(() => b.resynced("marker"));
    a.bus.publishUpdate("conv", 2, new Uint8Array([2]));
    a.bus.publishUpdate("marker", 1, new Uint8Array([9]));
    await waitUntil(() => b.received.length === 2);
    expect(b.received.map((m) => m.conversation)).toEqual(["conv", "marker"]);
    b.bus.unsubscribe("marker");
    // No pattern subscriptions, ever.
    expect(await admin.pubsub("NUMPAT")).toBe(0);
  });

  it("relays awareness with the sending session", async () => {
    const a = start("a");
    const b = start("b");
    b.bus.subscribe("conv");
    await waitUntil(() => b.resynced("conv") && a.bus.health().state === "ok");
    a.bus.publishAwareness("conv", "session-1", new Uint8Array([1, 2]), "org\u0000ann");
    await waitUntil(() => b.received.length === 1);
    expect(b.received[0]).toMatchObject({ kind: "awareness", session: "session-1", update: new Uint8Array([1, 2]), who: "org\u0000ann" });
  });

  it("asks for a resync of every subscribed conversation after its subscriber connection is killed", async () => {
    const a = start("a");
    const b = start("b");
    b.bus.subscribe("one");
    b.bus.subscribe("two");
    await waitUntil(() => b.resynced("one") && b.resynced("two") && a.bus.health().state === "ok");
    b.resyncs.length = 0;
    expect(await kill("b:sub")).toBe(1);
    await waitUntil(() => b.resyncs.length > 0);
    expect(b.resyncs.flat().sort()).toEqual(["one", "two"]);
    // Subscribed again: messages flow.
    await waitUntil(() => b.bus.health().state === "ok");
    a.bus.publishUpdate("two", 3, new Uint8Array([3]));
    await waitUntil(() => b.received.length === 1);
  });

  it("announces how far it got once its publisher is back, after publishes failed", async () => {
    const a = start("a");
    const b = start("b");
    b.bus.subscribe("conv");
    await waitUntil(() => b.resynced("conv") && a.bus.health().state === "ok");
    expect(await kill("a:pub")).toBe(1);
    await waitUntil(() => a.bus.health().state === "down");
    for (let seq = 1; seq <= 3; seq++) a.bus.publishUpdate("conv", seq, new Uint8Array([seq]));
    await waitUntil(() => b.received.some((m) => m.kind === "head"));
    expect(b.received.filter((m) => m.kind === "head")).toEqual([{ kind: "head", conversation: "conv", origin: `${prefix}a`, seq: 3 }]);
  });

  it("reports down while Redis is unreachable, then ok, and closes promptly either way", async () => {
    const dead = new RedisBus({ url: "redis://127.0.0.1:1", nodeId: `${prefix}dead`, channelPrefix: prefix, sharded: false, logger: createLogger("silent"), now: systemClock });
    dead.subscribe("conv");
    dead.publishUpdate("conv", 1, new Uint8Array([1])); // must not throw or queue without bound
    await waitUntil(() => dead.health().state === "down", { what: "an unreachable Redis reported down" });
    const started = Date.now();
    await dead.close();
    expect(Date.now() - started).toBeLessThan(1500);
    const a = start("a");
    await waitUntil(() => a.bus.health().state === "ok");
  });
});
