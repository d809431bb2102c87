// Webhooks end to end: a real HTTP receiver on 127.0.0.1 (hence PARLEY_WEBHOOK_ALLOW_PRIVATE in
// that server) verifies every signature and must see every event exactly once, in order, while
// it fails for a while and Parley restarts in the middle. A server without the override refuses
// URLs that point into private networks.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, type ParleyEvent } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";
import { waitUntil } from "./helpers/wait.ts";

const PASSWORD = "violet-harbour-tractor-91!";

/** An API client that opens a fresh connection per request (see partner-events.test.ts). */
function freshApi(baseUrl: string): ReturnType<typeof apiClient> {
  const call = apiClient(baseUrl);
  return (method, path, options = {}) => call(method, path, { ...options, headers: { connection: "close", ...options.headers } });
}

async function signUp(api: ReturnType<typeof apiClient>, email: string) {
  const signup = await confirmedSignUp(api, { email, password: PASSWORD, name: "Admin", organisation: email.split("@")[1] });
  expect(signup.status).toBe(201);
  return { token: signup.body.accessToken as string, orgId: (signup.body.organisation as { id: string }).id };
}

describe("webhooks to a real receiver", () => {
  let server: TestServer;
  let api: ReturnType<typeof apiClient>;
  let receiver: WebhookReceiver;
  let admin: { token: string; orgId: string };
  let endpointId: string;

  beforeAll(async () => {
    server = await startTestServer({
      env: {
        PARLEY_WEBHOOK_ALLOW_PRIVATE: "true",
        PARLEY_WEBHOOK_RETRY_BASE_MS: "100",
        PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS: "1000",
        PARLEY_WEBHOOK_TIMEOUT_MS: "2000",
        PARLEY_EVENT_DEBOUNCE_MS: "20",
      },
    });
    api = freshApi(server.httpUrl);
    receiver = await startWebhookReceiver();
    admin = await signUp(api, "ann@helpdesk.example");
  });

  afterAll(async () => {
    await server.cleanup();
    await receiver.close();
  });

  it("registers an endpoint and shows its secret once", async () => {
    const created = await api("POST", `/v1/organisations/${admin.orgId}/webhooks`, { token: admin.token, body: { url: receiver.url, description: "TOPdesk" } });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.body).not.toHaveProperty("secretSealed");
    endpointId = created.body.id as string;
    receiver.secret = created.body.secret as string;
    const listed = await api("GET", `/v1/organisations/${admin.orgId}/webhooks`, { token: admin.token });
    expect(JSON.stringify(listed.body)).not.toContain(receiver.secret);
  });

  it("delivers every event exactly once and in order while the receiver fails for a while and Parley restarts", async () => {
    receiver.mode = "fail";
    const conversation = await api("POST", "/v1/conversations", { token: admin.token, body: { title: "Broken boiler", externalRef: "TICKET-7" } });
    expect(conversation.status).toBe(201);
    const id = conversation.body.id as string;
    for (let i = 0; i < 10; i++) {
      expect((await api("POST", `/v1/conversations/${id}/messages`, { token: admin.token, body: { text: `before ${i}` } })).status).toBe(201);
    }
    await receiver.waitFor((r) => r.requests.length >= 3);

    await server.restart();
    for (let i = 0; i < 10; i++) {
      expect((await api("POST", `/v1/conversations/${id}/messages`, { token: admin.token, body: { text: `after ${i}` } })).status).toBe(201);
    }
    await api("POST", `/v1/conversations/${id}/close`, { token: admin.token });
    await receiver.waitFor((r) => r.requests.length >= 8);
    receiver.mode = "accept";

    let expected: ParleyEvent[] = [];
    await waitUntil(async () => {
      const page = await api("GET", "/v1/events?limit=100", { token: admin.token });
      expected = page.body.items as ParleyEvent[];
      return expected.length === 22;
    });
    await receiver.waitFor((r) => r.accepted.length >= expected.length);
    // Barrier: one more event. An endpoint gets its events one at a time in cursor order, so once
    // this one is accepted, a duplicate of any earlier event would already have arrived.
    const marker = await api("POST", "/v1/conversations", { token: admin.token, body: { title: "Marker" } });
    expect(marker.status).toBe(201);
    await receiver.waitFor((r) => r.accepted.some((e) => e.conversation === marker.body.id));
    const markerEvent = receiver.accepted.at(-1);
    expect(markerEvent).toMatchObject({ type: "conversation.created", conversation: marker.body.id });

    expect(receiver.requests.every((r) => r.signatureValid)).toBe(true);
    expect(receiver.accepted.map((e) => e.id)).toEqual([...expected.map((e) => e.id), markerEvent?.id]);
    expect(receiver.accepted.map((e) => e.cursor)).toEqual([...expected, markerEvent].map((_, i) => i + 1));
    // The first event was tried several times (on both sides of the restart) before it got through.
    const firstTries = receiver.requests.filter((r) => r.event.cursor === 1);
    expect(firstTries.length).toBeGreaterThan(3);
    expect(Number(firstTries.at(-1)?.headers["parley-delivery-attempt"])).toBe(firstTries.length);
    expect(firstTries.at(-1)?.headers["parley-event-id"]).toBe(expected[0].id);

    // The receiver has answered; the endpoint's stored cursor follows its answer.
    let endpoint = await api("GET", `/v1/organisations/${admin.orgId}/webhooks/${endpointId}`, { token: admin.token });
    await waitUntil(async () => {
      endpoint = await api("GET", `/v1/organisations/${admin.orgId}/webhooks/${endpointId}`, { token: admin.token });
      return (endpoint.body.delivery as { cursor: number }).cursor === 23;
    });
    expect(endpoint.body).toMatchObject({ status: "enabled", delivery: { cursor: 23, attempts: 0, failingSince: null, lastError: null } });
    const attempts = await api("GET", `/v1/organisations/${admin.orgId}/webhooks/${endpointId}/attempts?limit=200`, { token: admin.token });
    const failed = (attempts.body.items as { ok: boolean; status: number; excerpt: string }[]).filter((a) => !a.ok);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((a) => a.status === 503 && a.excerpt.length <= 256 && a.excerpt.startsWith("no (503)"))).toBe(true);
  });

  it("does not follow redirects", async () => {
    receiver.mode = "redirect";
    const before = receiver.requests.length;
    const conversation = await api("POST", "/v1/conversations", { token: admin.token, body: { title: "Redirected" } });
    expect(conversation.status).toBe(201);
    await receiver.waitFor((r) => r.requests.length > before);
    await waitUntil(async () => {
      const attempts = await api("GET", `/v1/organisations/${admin.orgId}/webhooks/${endpointId}/attempts?limit=1`, { token: admin.token });
      return (attempts.body.items as { error: string | null }[])[0]?.error === "HTTP 302 (redirects are not followed)";
    });
    receiver.mode = "accept";
    await receiver.waitFor((r) => r.accepted.some((e) => e.conversation === conversation.body.id));
  });

  it("lets only admins and owners manage endpoints", async () => {
    const key = await api("POST", `/v1/organisations/${admin.orgId}/api-keys`, { token: admin.token, body: { name: "partner", scopes: ["conversations:write"] } });
    const asKey = await api("POST", `/v1/organisations/${admin.orgId}/webhooks`, { token: key.body.key as string, body: { url: receiver.url } });
    expect(asKey.status).toBe(403);
    const other = await signUp(api, "olga@other.example");
    const foreign = await api("GET", `/v1/organisations/${admin.orgId}/webhooks/${endpointId}`, { token: other.token });
    expect(foreign.status).toBe(404);
  });
});

describe("webhook URLs without the private-address override", () => {
  let server: TestServer;
  let api: ReturnType<typeof apiClient>;
  let admin: { token: string; orgId: string };

  beforeAll(async () => {
    server = await startTestServer();
    api = freshApi(server.httpUrl);
    admin = await signUp(api, "ann@guarded.example");
  });

  afterAll(async () => {
    await server.cleanup();
  });

  it.each([
    ["https://127.0.0.1/hook", /127\.0\.0\.1.*private, loopback/],
    ["https://localhost:8443/hook", /private, loopback/],
    ["https://10.1.2.3/hook", /private/],
    ["https://192.168.1.10/hook", /private/],
    ["https://169.254.169.254/latest/meta-data", /private/],
    ["https://[::1]/hook", /private/],
    ["https://[::ffff:127.0.0.1]/hook", /private/],
    ["https://[fd00::1]/hook", /private/],
    ["https://0.0.0.0/hook", /private/],
    ["http://93.184.215.14/hook", /must use https/],
    ["https://user:secret@93.184.215.14/hook", /credentials/],
    ["ftp://93.184.215.14/hook", /must use https/],
  ])("refuses %s", async (url, reason) => {
    const response = await api("POST", `/v1/organisations/${admin.orgId}/webhooks`, { token: admin.token, body: { url } });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe(ErrorCode.InvalidRequest);
    expect(response.body.error?.message).toMatch(reason);
  });

  it("accepts a public https URL", async () => {
    const created = await api("POST", `/v1/organisations/${admin.orgId}/webhooks`, { token: admin.token, body: { url: "https://93.184.215.14/parley", events: ["message.created"] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ eventTypes: ["message.created"], status: "enabled" });
    const removed = await api("DELETE", `/v1/organisations/${admin.orgId}/webhooks/${created.body.id}`, { token: admin.token });
    expect(removed.status).toBe(204);
  });
});
