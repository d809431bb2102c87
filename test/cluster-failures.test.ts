// Failures in a cluster of real server processes, and what each one may not cost: Redis
// connections killed in the middle of a burst, a node killed with SIGKILL, Redis unreachable for
// one node. In every case no acknowledged update is missing on any client of any node.

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { DocClient } from "./helpers/doc-client.ts";
import { requirePostgres, requireRedis } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";
import { waitUntil } from "./helpers/wait.ts";

const databaseUrl = await requirePostgres();
const redisUrl = await requireRedis();
const services = databaseUrl && redisUrl ? { databaseUrl, redisUrl } : null;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function cluster(count: number, options: { env?: Record<string, string>; redisUrlFor?: (name: string) => string } = {}): Promise<Cluster> {
  if (!services) throw new Error("unreachable: skipped without services");
  const started = await startCluster(services, { count, ...options });
  cleanups.push(() => started.cleanup());
  return started;
}

async function client(url: string, token: string, conversation: string): Promise<DocClient> {
  const opened = await DocClient.open(url, token, conversation);
  cleanups.push(() => opened.close());
  return opened;
}

async function readiness(httpUrl: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${httpUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Every acknowledged write of `writers` is in `reader`'s document. */
function missing(reader: DocClient, writers: DocClient[]): string[] {
  const text = reader.text;
  return writers.flatMap((w) => w.acked.map((a) => a.text)).filter((t) => !text.includes(t));
}

describe.skipIf(!services)("failures in a cluster", { timeout: 150_000 }, () => {
  it("loses no acknowledged update on any client when Redis connections are killed mid-burst", async () => {
    const c = await cluster(3, { env: { PARLEY_COMPACT_AFTER_UPDATES: "60" } });
    const token = await c.token("ann", "helpdesk", { storm: "writer" });
    const readers = await Promise.all(c.nodes.map((node) => client(node.url, token, "storm")));
    const writers = [await client(c.nodes[0].url, token, "storm"), await client(c.nodes[1].url, token, "storm")];
    let writing = true;
    let killed = 0;
    const killer = (async () => {
      while (writing) {
        await sleep(40);
        // Subscribers and publishers of every node of this cluster, like CLIENT KILL TYPE pubsub
        // and more, but without touching other test runs sharing this Redis.
        killed += await c.killRedisConnections();
      }
    })();
    const burst = async (writer: DocClient, tag: string) => {
      const acks: Promise<number>[] = [];
      for (let i = 0; i < 400; i++) {
        acks.push(writer.write(`${tag}${i};`));
        if (i % 10 === 9) await sleep(8);
      }
      return Promise.all(acks);
    };
    await Promise.all([burst(writers[0], "a"), burst(writers[1], "b")]);
    writing = false;
    await killer;
    expect(killed).toBeGreaterThan(4);
    expect(writers.flatMap((w) => w.acked)).toHaveLength(800);
    for (const reader of [...readers, ...writers]) {
      await waitUntil(() => missing(reader, writers).length === 0, { what: `every acked update on ${reader.conversation}` });
      expect(reader.closeCode).toBeNull(); // no reconnect helped: the node delivered it live
    }
    for (const reader of readers) expect(reader.outOfOrder).toBe(0);
    await waitUntil(() => readers.every((r) => r.text === readers[0].text), { what: "readers converge" });
  });

  it("loses nothing acknowledged when a node is SIGKILLed: its clients reconnect to another node", async () => {
    const c = await cluster(3);
    const token = await c.token("ann", "helpdesk", { survivor: "writer" });
    const watcher = await client(c.nodes[1].url, token, "survivor");
    // The writer comes in through the load balancer and lands on node a.
    c.balancer.backends = [c.nodes[0].server.port];
    const sdk = new ParleyClient({
      url: c.balancerUrl,
      token: () => c.token("ann", "helpdesk", { survivor: "writer" }),
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      reconnect: { baseMs: 20, capMs: 200 },
    });
    cleanups.push(() => sdk.close());
    const handle = sdk.open("survivor");
    await handle.whenSynced();
    c.balancer.backends = c.nodes.map((n) => n.server.port);
    const notes = handle.doc.getText("notes");
    const savedBeforeKill: string[] = [];
    let killedAt = -1;
    for (let i = 0; i < 120; i++) {
      const item = `w${i};`;
      notes.insert(notes.length, item);
      if (i === 60) {
        killedAt = i;
        await c.kill("a"); // mid-stream: this write and the next ones are not acknowledged yet
      } else if (killedAt < 0) {
        await handle.whenSaved();
        savedBeforeKill.push(item);
      }
      if (i % 5 === 0) await sleep(2);
    }
    expect(savedBeforeKill.length).toBe(60);
    // Everything acknowledged before the kill is on node b's client already, or arrives there.
    await waitUntil(() => savedBeforeKill.every((item) => watcher.text.includes(item)), { what: "acked updates on node b" });
    // The SDK reconnects (to b or c) and re-sends what was not acknowledged; all of it arrives.
    await handle.whenSaved();
    await waitUntil(() => watcher.text === notes.toString(), { what: "the writer's whole text on node b" });
    const late = await client(c.nodes[2].url, token, "survivor");
    expect(late.text).toBe(notes.toString());
    await c.settled("survivor");
    const verdict = await verifyConversation(await c.store(), "survivor", c.keys.auditKey);
    expect(verdict).toMatchObject({ ok: true });
  });

  it("keeps serving its own clients while Redis is unreachable, and catches up when it returns", async () => {
    if (!redisUrl) return;
    const redisPort = Number(new URL(redisUrl).port || 6379);
    const redisProxy = await TcpProxy.start([redisPort]);
    cleanups.push(() => redisProxy.close());
    const c = await cluster(2, { redisUrlFor: (name) => (name === "b" ? `redis://127.0.0.1:${redisProxy.port}` : redisUrl) });
    const token = await c.token("ann", "helpdesk", { island: "writer" });
    const [onA, onB] = c.nodes;
    const readerA = await client(onA.url, token, "island");
    const readerB = await client(onB.url, token, "island");
    const writerA = await client(onA.url, token, "island");
    const writerB = await client(onB.url, token, "island");
    expect((await readiness(onB.httpUrl)).body).toMatchObject({ status: "ready", bus: "ok" });

    // Phase 1: b is cut off while a writes. b keeps serving its own clients...
    redisProxy.cut();
    await waitUntil(async () => (await readiness(onB.httpUrl)).body.bus === "down", { what: "node b reports its bus down" });
    expect(await readiness(onB.httpUrl)).toMatchObject({ status: 200, body: { status: "degraded", store: "ok" } });
    for (let i = 0; i < 10; i++) await writerB.write(`b${i};`);
    await waitUntil(() => missing(readerB, [writerB]).length === 0, { what: "node b's own clients see its writes" });
    // ...(a, meanwhile, learns of b's writes from the store: its own next commit shows the gap)
    for (let i = 0; i < 20; i++) await writerA.write(`a${i};`);
    await waitUntil(() => missing(readerA, [writerA, writerB]).length === 0, { what: "node a fills the gap from the store" });
    // Nothing tells b yet, and no wait makes that truer: b said its bus was down (readiness)
    // before a's first write, the proxy refuses b's reconnects, and b learns of another node's
    // commits only from the bus or from its own next commit (no store polling; its gap timer
    // runs only for a gap it has heard of). An absence has no event to wait for; this barrier
    // is the acknowledged one.
    expect(missing(readerB, [writerA]).length).toBe(20);
    // ...until Redis is back: b re-subscribes and reads what it missed from the store.
    redisProxy.restore();
    await waitUntil(() => missing(readerB, [writerA]).length === 0, { what: "node b catches up after reconnecting" });
    await waitUntil(async () => (await readiness(onB.httpUrl)).body.status === "ready", { what: "node b ready again" });

    // Phase 2: b is cut off while b writes: its publishes fail, so a cannot hear of them...
    redisProxy.cut();
    await waitUntil(async () => (await readiness(onB.httpUrl)).body.bus === "down", { what: "node b's bus down again" });
    for (let i = 10; i < 30; i++) await writerB.write(`b${i};`);
    // As above: b's bus was down (readiness) before these writes, and a writes nothing meanwhile.
    expect(missing(readerA, [writerB]).length).toBe(20);
    // ...until b's publisher is back and announces how far it got: a reads the rest.
    redisProxy.restore();
    for (const reader of [readerA, readerB, writerA, writerB]) {
      await waitUntil(() => missing(reader, [writerA, writerB]).length === 0, { what: "every acked update everywhere" });
    }
    expect(readerA.outOfOrder + readerB.outOfOrder).toBe(0);
  });
});
