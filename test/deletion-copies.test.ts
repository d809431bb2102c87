// Deletion reaches every copy Parley keeps. An organisation that deletes its side loses its copies
// of the conversation's partner events and webhook deliveries at once and receives nothing more
// about it; a destroyed conversation leaves no plaintext in any file of the data directory (WAL
// files included) and no row naming it in any table, except the deletion ledger and the audit
// chains, which record that it was destroyed.

import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, expect, it } from "vitest";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { signUp, type SignedUp } from "./helpers/sign-up.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

let server: TestServer | null = null;
let receiver: WebhookReceiver | null = null;
afterEach(async () => {
  await server?.cleanup();
  await receiver?.close();
  server = null;
  receiver = null;
});

/** A marker no other test writes, so finding it anywhere means this conversation left a copy. */
const marker = (what: string) => `${what}-${randomUUID()}`;

async function setup() {
  server = await startTestServer({
    env: { PARLEY_WEBHOOK_ALLOW_PRIVATE: "true", PARLEY_WEBHOOK_RETRY_BASE_MS: "50", PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS: "1000", PARLEY_EVENT_DEBOUNCE_MS: "20" },
  });
  const test = server;
  const api = apiClient(test.httpUrl);
  receiver = await startWebhookReceiver();
  receiver.mode = "fail";
  const helpdesk = await signUp(api, `hilde-${randomUUID()}@helpdesk.example`, "Helpdesk");
  const supplier = await signUp(api, `sven-${randomUUID()}@supplier.example`, "Supplier");
  // The supplier's helpdesk integration: a webhook that keeps failing (attempts with response excerpts).
  const hook = await api("POST", `/v1/organisations/${supplier.orgId}/webhooks`, { token: supplier.token, body: { url: receiver.url } });
  expect(hook.status).toBe(201);
  receiver.secret = hook.body.secret as string;
  const endpointId = hook.body.id as string;
  const texts = { title: marker("title"), externalRef: marker("REF"), helpdesk: marker("helpdesk-says"), supplier: marker("supplier-says") };
  const started = await api("POST", "/v1/conversations", {
    token: helpdesk.token,
    body: { title: texts.title, externalRef: texts.externalRef, participants: [{ organisation: supplier.orgId }] },
  });
  expect(started.status).toBe(201);
  const id = started.body.id as string;
  const post = async (who: SignedUp, text: string) =>
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: who.token, body: { text } })).status).toBe(201);
  await post(helpdesk, texts.helpdesk);
  await post(supplier, texts.supplier);
  const eventsOf = async (org: string) => {
    const read = await test.server.events.store.read(org, 0, 10_000);
    return read.status === "ok" ? read.events.filter((e) => e.json.includes(id)) : [];
  };
  // Both messages reached the supplier's stream, and its webhook failed on them (attempts stored).
  await expect.poll(async () => (await eventsOf(supplier.orgId)).filter((e) => e.type === "message.created").length, { timeout: 15_000 }).toBe(2);
  await expect.poll(async () => (await test.server.webhooks.store.listAttempts(endpointId, 100)).length, { timeout: 15_000 }).toBeGreaterThan(0);
  // An event given up on after the retry window, as the dispatcher parks it.
  const [first] = await eventsOf(supplier.orgId);
  const attempt = { endpointId, at: Date.now(), eventId: first.id, cursor: first.cursor, attempt: 99, ok: false, status: 503, error: "HTTP 503", durationMs: 1, excerpt: "unavailable" };
  const endpoint = await test.server.webhooks.store.getEndpoint(endpointId);
  if (!endpoint) throw new Error("endpoint vanished");
  await test.server.webhooks.store.recordOutcome({
    endpointId,
    attempt,
    state: endpoint.delivery,
    park: { id: `dl_${randomUUID()}`, endpointId, cursor: first.cursor, eventId: first.id, eventType: first.type, eventJson: first.json, attempts: 99, parkedAt: Date.now(), lastError: "HTTP 503" },
  });
  expect((await test.server.webhooks.store.listDeadLetters(endpointId, 100)).length).toBe(1);
  return { test, api, helpdesk, supplier, id, texts, endpointId, eventsOf, post };
}

it("an organisation deleting its side loses its event and webhook copies at once and receives nothing more", async () => {
  const { test, api, helpdesk, supplier, id, endpointId, eventsOf, post } = await setup();
  const before = (await eventsOf(helpdesk.orgId)).length;
  const eventIds = new Set((await eventsOf(supplier.orgId)).map((e) => e.id));
  expect((await api("DELETE", `/v1/conversations/${id}`, { token: supplier.token })).status).toBe(200);
  expect(await eventsOf(supplier.orgId)).toEqual([]);
  expect(await test.server.webhooks.store.listDeadLetters(endpointId, 100)).toEqual([]);
  const attempts = await test.server.webhooks.store.listAttempts(endpointId, 1000);
  expect(attempts.filter((a) => eventIds.has(a.eventId))).toEqual([]);
  // The helpdesk keeps its copies and goes on; the supplier hears of none of it.
  await post(helpdesk, "after the supplier left");
  await expect.poll(async () => (await eventsOf(helpdesk.orgId)).length, { timeout: 15_000 }).toBeGreaterThan(before);
  expect(await eventsOf(supplier.orgId)).toEqual([]);
});
