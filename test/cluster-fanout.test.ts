// Several real server processes sharing Postgres and Redis: an update acknowledged on one node
// reaches clients on the others, in sequence order; clients spread over nodes converge; and
// writers on two nodes at once leave one numbered, unbroken audit chain.

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { DocClient } from "./helpers/doc-client.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { waitUntil } from "./helpers/wait.ts";

const services = await requireClusterServices();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function cluster(count: number, env: Record<string, string> = {}): Promise<Cluster> {
  if (!services) throw new Error("unreachable: skipped without services");
  const started = await startCluster(services, { count, env });
  cleanups.push(() => started.cleanup());
  return started;
}

async function client(url: string, token: string, conversation: string): Promise<DocClient> {
  const opened = await DocClient.open(url, token, conversation);
  cleanups.push(() => opened.close());
  return opened;
}

describe.skipIf(!services)("fan-out across nodes", { timeout: 120_000 }, () => {
  it("delivers an update acknowledged on node A to a client on node B", async () => {
    const c = await cluster(2);
    const token = await c.token("ann", "helpdesk", { ticket: "writer" });
    const reader = await client(c.nodes[1].url, token, "ticket");
    const writer = await client(c.nodes[0].url, token, "ticket");
    // One Redis channel per active conversation, each node subscribed once.
    expect(await c.subscribers("ticket")).toBe(2);
    const seq = await writer.write("hello from A");
    expect(seq).toBe(1);
    await reader.until(() => reader.text === "hello from A");
    expect(reader.liveUpdates).toBe(1);
    // Nobody left on B: its subscription goes (no pattern subscriptions, nothing lingering).
    reader.close();
    const deadline = Date.now() + 5000;
    while ((await c.subscribers("ticket")) !== 1) {
      if (Date.now() > deadline) throw new Error("node B kept its subscription");
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it("delivers a burst from one node to every other node complete and in sequence order", async () => {
    const c = await cluster(3, { PARLEY_COMPACT_AFTER_UPDATES: "40" });
    const token = await c.token("ann", "helpdesk", { burst: "writer" });
    const readers = [await client(c.nodes[1].url, token, "burst"), await client(c.nodes[2].url, token, "burst")];
    const localReader = await client(c.nodes[0].url, token, "burst");
    const writer = await client(c.nodes[0].url, token, "burst");
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 300; i++) writes.push(writer.write(`${i};`));
    await Promise.all(writes);
    for (const reader of [...readers, localReader]) {
      await reader.until(() => reader.text === writer.text);
      // Sequence order: Yjs never had to hold an update back for an earlier one.
      expect(reader.outOfOrder).toBe(0);
    }
  });

  it("converges SDK clients spread over three nodes editing one conversation at once", async () => {
    const c = await cluster(3);
    const handles = await Promise.all(
      ["ann", "bob", "cat", "dan", "eve", "fay"].map(async (user, i) => {
        const sdk = new ParleyClient({
          url: c.nodes[i % 3].url,
          token: () => c.token(user, i % 2 ? "supplier" : "helpdesk", { shared: "writer" }),
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          reconnect: { baseMs: 20, capMs: 200 },
        });
        cleanups.push(() => sdk.close());
        const handle = sdk.open("shared");
        await handle.whenSynced();
        return { user, handle };
      }),
    );
    for (let round = 0; round < 20; round++) {
      for (const { user, handle } of handles) {
        const notes = handle.doc.getText("notes");
        notes.insert(round % 2 ? 0 : notes.length, `${user}${round} `);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(handles.map(({ handle }) => handle.whenSaved()));
    const text = () => handles[0].handle.doc.getText("notes").toString();
    await waitUntil(() => handles.every(({ handle }) => handle.doc.getText("notes").toString() === text()), { what: "clients converge" });
    for (const { user } of handles) for (let round = 0; round < 20; round++) expect(text()).toContain(`${user}${round} `);
  });

  it("numbers concurrent writes on two nodes once each and keeps one valid audit chain", async () => {
    const c = await cluster(2, { PARLEY_COMPACT_AFTER_UPDATES: "50" });
    const token = await c.token("ann", "helpdesk", { contested: "writer" });
    const onA = await client(c.nodes[0].url, token, "contested");
    const onB = await client(c.nodes[1].url, token, "contested");
    const burst = (writer: DocClient, tag: string) =>
      Promise.all(Array.from({ length: 200 }, (_, i) => writer.write(`${tag}${i};`)));
    const [seqsA, seqsB] = await Promise.all([burst(onA, "a"), burst(onB, "b")]);
    // Every write got its own sequence number; snapshots (compaction) take the numbers in between.
    const all = [...seqsA, ...seqsB].sort((x, y) => x - y);
    expect(new Set(all).size).toBe(400);
    await onA.until(() => onA.text.length === onB.text.length && onA.text === onB.text, 15_000);
    // A compaction may still be committing its snapshot entry: verify the chain once it is in.
    await c.settled("contested");
    const store = await c.store();
    const verdict = await verifyConversation(store, "contested", c.keys.auditKey);
    expect(verdict).toMatchObject({ ok: true });
    const entries = await store.readEntries("contested", 0, 10_000);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(entries.filter((e) => e.kind === "update").map((e) => e.seq)).toEqual(all);
  });
});
