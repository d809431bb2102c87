// Partner events and webhooks across nodes: both live in the shared Postgres, so events derived
// on node A reach a partner following on node B (SSE, woken over the bus) and B's event pages,
// and a webhook endpoint is delivered by exactly one node: every event once, not once per node,
// and by another node once that one is killed.

import { afterEach, describe, expect, it } from "vitest";
import type { ParleyEvent } from "../protocol/index.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { apiClient } from "./helpers/http-client.ts";
import { allEvents, signUpWithKey as signUp } from "./helpers/partner-orgs.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { followSse } from "./helpers/sse-client.ts";
import { startWebhookReceiver } from "./helpers/webhook-receiver.ts";
import { waitUntil } from "./helpers/wait.ts";

const services = await requireClusterServices();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

type Api = ReturnType<typeof apiClient>;

describe.skipIf(!services)("partner events across nodes", { timeout: 180_000 }, () => {
  it("shows events written on node A on node B's stream and pages, delivers each webhook once, and hands delivery over when that node dies", async () => {
    if (!services) return;
    const c: Cluster = await startCluster(services, {
      count: 2,
      env: { PARLEY_WEBHOOK_ALLOW_PRIVATE: "true", PARLEY_EVENT_DEBOUNCE_MS: "20" },
    });
    cleanups.push(() => c.cleanup());
    // Which node delivers each endpoint, as the nodes log it when they take a claim.
    const claimants = new Map<string, string>();
    for (const node of c.nodes) {
      node.server.process.stdout?.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) {
          if (line.includes("webhook endpoint claimed")) claimants.set((JSON.parse(line) as { endpoint: string }).endpoint, node.name);
        }
      });
    }
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    const [a, b] = c.nodes.map((node) => apiClient(node.httpUrl)) as [Api, Api];

    const helpdesk = await signUp(a, "ann@helpdesk.example", "Helpdesk BV");
    const supplier = await signUp(b, "sam@supplier.example", "Supplier BV");
    // The endpoint is registered through B; both nodes run a delivery loop for it, one delivers.
    const endpoint = await b("POST", `/v1/organisations/${helpdesk.orgId}/webhooks`, { token: helpdesk.token, body: { url: receiver.url } });
    expect(endpoint.status).toBe(201);
    receiver.secret = endpoint.body.secret as string;
    const endpointId = endpoint.body.id as string;
    // The supplier follows its stream on node B.
    const stream = followSse(c.nodes[1].httpUrl, supplier.key);
    cleanups.push(() => stream.stop());

    // Everything happens on node A.
    const created = await a("POST", "/v1/conversations", {
      token: helpdesk.key,
      body: { title: "Broken boiler", participants: [{ organisation: supplier.orgId }] },
    });
    expect(created.status).toBe(201);
    const conversation = created.body.id as string;
    const texts = ["one", "two", "three", "four", "five"];
    for (const text of texts) {
      expect((await a("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text } })).status).toBe(201);
    }

    const messages = (events: ParleyEvent[]) => events.filter((e) => e.type === "message.created" && e.conversation === conversation);
    await stream.waitFor((events) => messages(events).length === texts.length, 30_000);
    const onB = await allEvents(b, supplier.key);
    expect(onB.map((e) => e.id)).toEqual((await allEvents(a, supplier.key)).map((e) => e.id));
    expect(stream.events.map((e) => e.id)).toEqual(onB.map((e) => e.id));
    // Strictly increasing; not necessarily 1, 2, 3…: security notices (opt-in by type) take
    // cursors of the organisation's stream that a reader of other types does not see.
    const cursors = onB.map((e) => e.cursor);
    expect(cursors).toEqual([...cursors].sort((x, y) => x - y));
    expect(new Set(cursors).size).toBe(cursors.length);

    const helpdeskEvents = await allEvents(a, helpdesk.key);
    expect(messages(helpdeskEvents)).toHaveLength(texts.length);
    await receiver.waitFor((r) => r.accepted.length >= helpdeskEvents.length, 30_000);
    // One more event after the first batch: had the other node delivered too, the duplicates
    // of the first batch would have arrived before it (each endpoint delivers in cursor order).
    expect((await b("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text: "six" } })).status).toBe(201);
    await receiver.waitFor((r) => r.accepted.some((e) => e.type === "message.created" && JSON.stringify(e.data).includes("six")), 30_000);
    const ids = receiver.accepted.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(0, helpdeskEvents.length)).toEqual(helpdeskEvents.map((e) => e.id));
    expect(receiver.requests.every((r) => r.signatureValid)).toBe(true);

    // The delivering node is SIGKILLed (once it has recorded its last delivery: a delivery in
    // flight may be repeated by the next holder, which receivers deduplicate): the other node
    // takes the endpoint over from the stored cursor.
    const head = (await allEvents(a, helpdesk.key)).at(-1)?.cursor;
    const storedCursor = async () =>
      ((await a("GET", `/v1/organisations/${helpdesk.orgId}/webhooks/${endpointId}`, { token: helpdesk.token })).body.delivery as { cursor: number }).cursor;
    await waitUntil(async () => (await storedCursor()) === head, { what: "the delivery recorded", interval: 50 });
    const holder = claimants.get(endpointId);
    const survivor = c.nodes.find((node) => node.name !== holder);
    if (!holder || !survivor) throw new Error(`no single node claimed the endpoint (${holder})`);
    await c.kill(holder);
    const onSurvivor = apiClient(survivor.httpUrl);
    expect((await onSurvivor("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text: "seven" } })).status).toBe(201);
    await receiver.waitFor((r) => r.accepted.some((e) => e.type === "message.created" && JSON.stringify(e.data).includes("seven")), 30_000);
    expect(claimants.get(endpointId)).toBe(survivor.name);
    const after = receiver.accepted.map((e) => e.id);
    expect(new Set(after).size).toBe(after.length);
    expect(after).toEqual((await allEvents(onSurvivor, helpdesk.key)).map((e) => e.id));
  });
});
