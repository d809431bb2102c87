// Partner events and webhooks across nodes: both live in the shared Postgres, so events derived
// on node A reach a partner following on node B (SSE, woken over the bus) and B's event pages,
// and a webhook endpoint is delivered by exactly one node: every event once, not once per node.

import { afterEach, describe, expect, it } from "vitest";
import type { ParleyEvent } from "../protocol/index.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { apiClient } from "./helpers/http-client.ts";
import { allEvents, signUpWithKey as signUp } from "./helpers/partner-orgs.ts";
import { requirePostgres, requireRedis } from "./helpers/services.ts";
import { followSse } from "./helpers/sse-client.ts";
import { startWebhookReceiver } from "./helpers/webhook-receiver.ts";

const databaseUrl = await requirePostgres();
const redisUrl = await requireRedis();
const services = databaseUrl && redisUrl ? { databaseUrl, redisUrl } : null;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

type Api = ReturnType<typeof apiClient>;

describe.skipIf(!services)("partner events across nodes", { timeout: 180_000 }, () => {
  it("shows events written on node A on node B's stream and pages, and delivers each webhook once", async () => {
    if (!services) return;
    const c: Cluster = await startCluster(services, {
      count: 2,
      env: { PARLEY_WEBHOOK_ALLOW_PRIVATE: "true", PARLEY_EVENT_DEBOUNCE_MS: "20" },
    });
    cleanups.push(() => c.cleanup());
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    const [a, b] = c.nodes.map((node) => apiClient(node.httpUrl)) as [Api, Api];

    const helpdesk = await signUp(a, "ann@helpdesk.example", "Helpdesk BV");
    const supplier = await signUp(b, "sam@supplier.example", "Supplier BV");
    // The endpoint is registered through B; both nodes run a delivery loop for it, one delivers.
    const endpoint = await b("POST", `/v1/organisations/${helpdesk.orgId}/webhooks`, { token: helpdesk.token, body: { url: receiver.url } });
    expect(endpoint.status).toBe(201);
    receiver.secret = endpoint.body.secret as string;
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
    expect(onB.map((e) => e.cursor)).toEqual(onB.map((_, i) => i + 1));

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
  });
});
