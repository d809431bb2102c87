// Time travel with several nodes (real server processes sharing Postgres and Redis): a node reads
// the past of changes written on another, a restore made on one node reaches a live client on the
// other, and the shared audit chain still verifies. Compaction runs every 10 updates, so reads
// cross snapshots written by either node.

import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import { readMessages } from "../protocol/index.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { startCluster } from "./helpers/cluster.ts";
import { apiClient } from "./helpers/http-client.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { signUp } from "./helpers/sign-up.ts";

const services = await requireClusterServices();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe.skipIf(!services)("time travel across nodes", { timeout: 120_000 }, () => {
  it("reads on one node what another wrote, and a restore on one node reaches a live client on the other", async () => {
    if (!services) return;
    const cluster = await startCluster(services, { count: 2, env: { PARLEY_COMPACT_AFTER_UPDATES: "10" } });
    cleanups.push(() => cluster.cleanup());
    const [a, b] = cluster.nodes.map((node) => apiClient(node.httpUrl));
    const owner = await signUp(a, "nora@nodes.example", "Nodes");
    const conversation = (await a("POST", "/v1/conversations", { token: owner.token, body: { title: "Across nodes" } })).body.id as string;

    const client = new ParleyClient({ url: cluster.nodes[1].url, token: async () => owner.token, WebSocket: WebSocket as unknown as WebSocketConstructor });
    cleanups.push(() => client.close());
    const live = client.open(conversation);
    await live.whenSynced();

    const seqs: number[] = [];
    for (let i = 1; i <= 15; i++) {
      const posted = await a("POST", `/v1/conversations/${conversation}/messages`, { token: owner.token, body: { text: `m${i}` } });
      expect(posted.status).toBe(201);
      seqs.push(posted.body.seq as number);
    }
    await cluster.settled(conversation);
    const store = await cluster.store();
    expect((await store.readEntries(conversation, 0, 100)).some((entry) => entry.kind === "snapshot")).toBe(true);
    await vi.waitFor(() => expect(readMessages(live.doc)).toHaveLength(15));

    // Node b rebuilds what node a wrote, at a point before and after the snapshot.
    for (const [index, seq] of [
      [4, seqs[4]],
      [13, seqs[13]],
    ] as const) {
      const past = await b("GET", `/v1/conversations/${conversation}/history?seq=${seq}`, { token: owner.token });
      expect(past.status).toBe(200);
      expect((past.body.items as { text: string }[]).map((m) => m.text)).toEqual(seqs.slice(0, index + 1).map((_, i) => `m${i + 1}`));
    }

    // Notes written on node b, restored away on node a; the client on node b converges to the
    // notes as they were, and keeps every message (a restore never takes back messages).
    live.doc.getText("notes").insert(0, "draft");
    await live.whenSaved();
    // The restore is computed on node a from what node a has: wait until it has the notes.
    const onA = new ParleyClient({ url: cluster.nodes[0].url, token: async () => owner.token, WebSocket: WebSocket as unknown as WebSocketConstructor });
    cleanups.push(() => onA.close());
    const watcherOnA = onA.open(conversation);
    await vi.waitFor(() => expect(watcherOnA.doc.getText("notes").toString()).toBe("draft"), { timeout: 10_000 });
    const restored = await a("POST", `/v1/conversations/${conversation}/restore`, { token: owner.token, body: { seq: seqs[4] } });
    expect(restored.body).toMatchObject({ changed: true, restoredTo: { seq: seqs[4] } });
    await vi.waitFor(() => expect(live.doc.getText("notes").toString()).toBe(""));
    expect(readMessages(live.doc)).toHaveLength(15);
    const timeline = await b("GET", `/v1/conversations/${conversation}/changes?after=${(restored.body.seq as number) - 1}`, { token: owner.token });
    expect(timeline.body.items).toEqual([expect.objectContaining({ seq: restored.body.seq, restore: true })]);

    expect(await verifyConversation(store, conversation, cluster.keys.auditKey)).toMatchObject({ ok: true });
  });
});
