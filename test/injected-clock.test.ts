// The server's one clock, injected end to end (issue 15): a real server started with a test clock
// set years away from the system's, and held still. Everything that decides or records by time
// follows that clock, not the system's: the tokens it signs (iat, exp) and their expiry, the log
// entries the SQLite store worker stamps, partner event times, and the webhook retry schedule (a
// failed delivery is retried only once the test clock passes its next attempt time). With the
// system clock anywhere in any of these, the checks below fail: the two clocks are years apart.

import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, type ParleyEvent } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";
import { waitUntil } from "./helpers/wait.ts";

/** 2030-03-17: far from any system clock this test runs under. */
const START = 1_900_000_000_000;
const ACCESS_TTL_SECONDS = 900;
let clock = START;
/** While set, reads of the clock by the webhook dispatcher's code are counted (the barrier below). */
let countDispatcherReads = false;
let dispatcherReads = 0;
let server: TestServer;
let api: ReturnType<typeof apiClient>;
let receiver: WebhookReceiver;
let owner: SignedUp;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      PARLEY_WEBHOOK_ALLOW_PRIVATE: "true",
      PARLEY_WEBHOOK_RETRY_BASE_MS: "100",
      PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS: "1000",
      PARLEY_EVENT_DEBOUNCE_MS: "20",
      PARLEY_ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL_SECONDS),
    },
    now: () => {
      if (countDispatcherReads && new Error().stack?.includes("webhook-dispatcher")) dispatcherReads++;
      return clock;
    },
  });
  api = apiClient(server.httpUrl);
  receiver = await startWebhookReceiver({ now: () => clock });
  owner = await signUp(api, "olga@clock.example", "Clock BV");
});

afterAll(async () => {
  await server?.cleanup();
  await receiver?.close();
});

describe("the injected clock", () => {
  it("signs access tokens at its time, and the store worker stamps log entries and events with it", async () => {
    const claims = decodeJwt(owner.token);
    expect(claims.iat).toBe(START / 1000);
    expect(claims.exp).toBe(START / 1000 + ACCESS_TTL_SECONDS);

    const created = await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Clocks" } });
    expect(created.status).toBe(201);
    const conversation = created.body.id as string;
    clock += 5_000;
    expect((await api("POST", `/v1/conversations/${conversation}/messages`, { token: owner.token, body: { text: "tick" } })).status).toBe(201);
    const entries = await server.server.store.readEntries(conversation, 0, 100);
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.map((entry) => entry.at)).toEqual(entries.map(() => START + 5_000));
    const lastActivity = await server.server.store.lastActivity([conversation]);
    expect(lastActivity.get(conversation)).toBe(START + 5_000);

    // Partner events carry the moment they were recorded: the creation before the clock moved, the message after.
    const events = async () => (await api("GET", "/v1/events", { token: owner.token })).body.items as ParleyEvent[];
    await waitUntil(async () => (await events()).some((e) => e.type === "message.created"));
    const times = Object.fromEntries((await events()).map((e) => [e.type, e.occurredAt]));
    expect(times).toMatchObject({ "conversation.created": START, "message.created": START + 5_000 });
  });

  it("retries a failed webhook delivery when its clock reaches the retry time, not before", async () => {
    const endpoint = await api("POST", `/v1/organisations/${owner.orgId}/webhooks`, { token: owner.token, body: { url: receiver.url, description: "clock" } });
    expect(endpoint.status).toBe(201);
    receiver.secret = endpoint.body.secret as string;
    const endpointId = endpoint.body.id as string;
    receiver.mode = "fail";
    const failedAt = clock;
    const created = await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Retry me" } });
    expect(created.status).toBe(201);
    await receiver.waitFor((r) => r.requests.length >= 1);
    const failing = async () => (await api("GET", `/v1/organisations/${owner.orgId}/webhooks/${endpointId}`, { token: owner.token })).body.delivery as { nextAttemptAt: number | null; failingSince: number | null };
    await waitUntil(async () => (await failing()).nextAttemptAt !== null);
    const delivery = await failing();
    // Scheduled on the injected clock: 50-100 ms (equal jitter over 100 ms) after the failure.
    expect(delivery.failingSince).toBe(failedAt);
    expect(delivery.nextAttemptAt).toBeGreaterThanOrEqual(failedAt + 50);
    expect(delivery.nextAttemptAt).toBeLessThanOrEqual(failedAt + 100);
    const attempts = await api("GET", `/v1/organisations/${owner.orgId}/webhooks/${endpointId}/attempts?limit=10`, { token: owner.token });
    expect((attempts.body.items as { at: number }[]).map((a) => a.at)).toEqual([failedAt]);

    // The dispatcher wakes on real timers (100 ms at most here) and reads the clock to see whether
    // the retry is due. Once it has looked three more times, with the clock standing still, the
    // retry has not fallen due (on the system clock it would have been sent at the first look).
    dispatcherReads = 0;
    countDispatcherReads = true;
    await waitUntil(() => dispatcherReads >= 3, { what: "the webhook dispatcher looking at the clock three times" });
    countDispatcherReads = false;
    expect(receiver.requests).toHaveLength(1);

    receiver.mode = "accept";
    clock += 1_000;
    await receiver.waitFor((r) => r.accepted.length >= 1);
    // Signed at the injected clock's time too (the receiver checks the signature's timestamp against it).
    expect(receiver.requests.map((r) => r.signatureValid)).toEqual([true, true]);
    const after = await api("GET", `/v1/organisations/${owner.orgId}/webhooks/${endpointId}/attempts?limit=10`, { token: owner.token });
    expect((after.body.items as { at: number; ok: boolean }[]).map((a) => [a.at, a.ok]).sort()).toEqual([
      [failedAt, false],
      [failedAt + 1_000, true],
    ]);
  });

  it("expires tokens by its time: past their exp they are refused, back before it they work again", async () => {
    const read = () => api("GET", `/v1/organisations/${owner.orgId}`, { token: owner.token });
    expect((await read()).status).toBe(200);
    const saved = clock;
    clock = START + ACCESS_TTL_SECONDS * 1000 + 1_000;
    const expired = await read();
    expect([expired.status, expired.body.error?.code]).toEqual([401, ErrorCode.TokenExpired]);
    clock = saved;
    expect((await read()).status).toBe(200);
  });
});
