// parley_webhook_backlog is exact: while a real receiver is down (answering 503) it counts every
// event the endpoint is owed, past what the delivery loop has read ahead (50), equal to what the
// event API lists after the endpoint's cursor; once the receiver is up again it falls to 0 as the
// receiver accepts them all. One series, no per-organisation label (organisations are unbounded).

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { apiClient } from "./helpers/http-client.ts";
import { scrape, seriesValue } from "./helpers/metrics-scrape.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

const METRICS_TOKEN = "metrics-token-for-the-backlog-0123456789";
/** More than the delivery loop reads ahead, so a count of its buffer would be short. */
const MESSAGES = 55;

let server: TestServer;
let receiver: WebhookReceiver;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      PARLEY_PASSWORD_MIN_SCORE: "0",
      PARLEY_METRICS_TOKEN: METRICS_TOKEN,
      PARLEY_WEBHOOK_ALLOW_PRIVATE: "true",
      PARLEY_WEBHOOK_RETRY_BASE_MS: "100",
      PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS: "1000",
      PARLEY_WEBHOOK_TIMEOUT_MS: "2000",
      PARLEY_EVENT_DEBOUNCE_MS: "20",
    },
  });
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await server?.cleanup();
  await receiver?.close();
});

const backlog = async () => seriesValue((await scrape(`${server.httpUrl}/metrics`, METRICS_TOKEN)).text, "parley_webhook_backlog");

describe("parley_webhook_backlog", () => {
  it("counts every delivery owed while the receiver is down, and nothing once it has them all", async () => {
    const api = apiClient(server.httpUrl);
    const signup = await confirmedSignUp(api, { email: "ann@backlog.example", password: TEST_PASSWORD, name: "Ann", organisation: "Backlog" });
    const token = signup.body.accessToken as string;
    const org = (signup.body.organisation as { id: string }).id;
    expect(await backlog()).toBe(0);

    receiver.mode = "fail";
    const endpoint = await api("POST", `/v1/organisations/${org}/webhooks`, { token, body: { url: receiver.url } });
    expect(endpoint.status).toBe(201);
    receiver.secret = endpoint.body.secret as string;
    const from = (endpoint.body.delivery as { cursor: number }).cursor;

    const conversation = await api("POST", "/v1/conversations", { token, body: { title: "Backlog" } });
    for (let i = 0; i < MESSAGES; i++) expect((await api("POST", `/v1/conversations/${conversation.body.id}/messages`, { token, body: { text: `m${i}` } })).status).toBe(201);
    // The events owed, as the event API lists them after the endpoint's starting cursor.
    let owed = 0;
    await vi.waitFor(async () => {
      const events = await api("GET", `/v1/events?after=${from}&limit=200`, { token });
      owed = (events.body.items as unknown[]).length;
      expect(owed).toBe(MESSAGES + 1);
    });
    await receiver.waitFor((r) => r.requests.length >= 2);
    expect(receiver.accepted).toHaveLength(0);
    await vi.waitFor(async () => expect(await backlog()).toBe(owed), { timeout: 15_000 });

    receiver.mode = "accept";
    await receiver.waitFor((r) => r.accepted.length === owed, 60_000);
    await vi.waitFor(async () => expect(await backlog()).toBe(0), { timeout: 15_000 });
  }, 120_000);
});
