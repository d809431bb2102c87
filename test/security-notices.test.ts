// Security notices: owners and admins hear, by e-mail and as a `security.notice` event on their
// stream and webhooks, of a sign-in from a new device, repeated failed sign-ins, a new API key
// (and the other policy events), each once, with what happened, when, from where and what to do;
// the organisation's notice history is in the API, for admins only.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

let sink: SmtpSink;
let server: TestServer;
let receiver: WebhookReceiver;
let owner: SignedUp;
const EMAIL = "owner@notices.example";

/** Requests from one "device": an address (behind a trusted proxy) and a browser. */
function device(address: string, userAgent: string) {
  const call = apiClient(server.httpUrl);
  return (method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<ApiResponse> =>
    call(method, path, { ...options, headers: { "x-forwarded-for": address, "user-agent": userAgent } });
}
const laptop = () => device("198.51.100.10", "Firefox/140 laptop");

async function notices(kind?: string): Promise<{ data: { notice: string; summary: string; advice: string; at: number; from: { ip: string | null; userAgent: string | null } } }[]> {
  const listed = await laptop()("GET", `/v1/organisations/${owner.orgId}/security-notices?limit=200`, { token: owner.token });
  expect(listed.status).toBe(200);
  const items = listed.body.items as { type: string; data: { notice: string; summary: string; advice: string; at: number; from: { ip: string | null; userAgent: string | null } } }[];
  for (const item of items) expect(item.type).toBe("security.notice");
  return kind ? items.filter((i) => i.data.notice === kind) : items;
}

beforeAll(async () => {
  sink = await startSmtpSink();
  server = await startTestServer({
    env: { PARLEY_SMTP_URL: `smtp://127.0.0.1:${sink.port}`, PARLEY_TRUST_PROXY: "true", PARLEY_WEBHOOK_ALLOW_PRIVATE: "true", PARLEY_WEBHOOK_RETRY_BASE_MS: "100" },
  });
  receiver = await startWebhookReceiver();
  owner = await signUp(laptop(), EMAIL, "Notices BV");
  const hook = await laptop()("POST", `/v1/organisations/${owner.orgId}/webhooks`, { token: owner.token, body: { url: receiver.url, events: ["security.notice"] } });
  expect(hook.status).toBe(201);
  receiver.secret = hook.body.secret as string;
});
afterAll(async () => {
  await server?.cleanup();
  await receiver?.close();
  await sink?.close();
});

describe("security notices", () => {
  it("tells owners of a sign-in from a new device, once, by e-mail, on the stream and by webhook", async () => {
    const signIn = (from: ReturnType<typeof device>) => from("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD } });
    // The device signed up from is known: no notice.
    expect((await signIn(laptop())).status).toBe(200);
    expect(await notices("sign-in.new-device")).toHaveLength(0);

    const phone = device("203.0.113.77", "Safari/19 phone");
    expect((await signIn(phone)).status).toBe(200);
    expect((await signIn(phone)).status).toBe(200);
    const raised = await notices("sign-in.new-device");
    expect(raised).toHaveLength(1);
    expect(raised[0].data.from).toEqual({ ip: "203.0.113.77", userAgent: "Safari/19 phone" });
    expect(raised[0].data.advice).toMatch(/sign them out/);

    const mail = await sink.waitFor((m) => m.to.includes(EMAIL) && m.subject.includes("sign-in.new-device"));
    expect(mail.text).toMatch(/What happened: .*not seen before/);
    expect(mail.text).toMatch(/When: \d{4}-\d\d-\d\dT/);
    expect(mail.text).toContain("From: address 203.0.113.77");
    expect(mail.text).toMatch(/What to do: /);
    await receiver.waitFor((r) => r.accepted.some((e) => e.type === "security.notice" && e.data.notice === "sign-in.new-device"));
    const delivered = receiver.requests.find((r) => r.event.type === "security.notice" && r.event.data.notice === "sign-in.new-device");
    expect(delivered?.signatureValid).toBe(true);
    // The event stream carries it too (as every partner event: paging API here).
    const stream = await laptop()("GET", "/v1/events?types=security.notice", { token: owner.token });
    expect((stream.body.items as { type: string }[]).some((e) => e.type === "security.notice")).toBe(true);
    expect(sink.messages.filter((m) => m.subject.includes("sign-in.new-device"))).toHaveLength(1);
  });

  it("tells owners once of repeated failed sign-ins, and of a new API key", async () => {
    const guesser = device("192.0.2.66", "curl/8");
    for (let i = 0; i < 10; i++) {
      const wrong = await guesser("POST", "/v1/auth/login", { body: { email: EMAIL, password: `wrong-guess-${i}-abcdef` } });
      expect(wrong.status).toBe(401);
    }
    expect((await guesser("POST", "/v1/auth/login", { body: { email: EMAIL, password: "still-wrong-abcdef" } })).status).toBe(429);
    await sink.waitFor((m) => m.subject.includes("sign-in.repeated-failures"));
    const failures = await notices("sign-in.repeated-failures");
    expect(failures).toHaveLength(1);
    expect(failures[0].data.from.ip).toBe("192.0.2.66");

    const key = await laptop()("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, body: { name: "helpdesk", scopes: ["conversations:read"] } });
    expect(key.status).toBe(201);
    await sink.waitFor((m) => m.subject.includes("api-key.created"));
    const created = await notices("api-key.created");
    expect(created).toHaveLength(1);
    expect(created[0].data.summary).toContain(key.body.id as string);
    expect(created[0].data.advice).toMatch(/revoke/);
  });

  it("shows the history only to the organisation's admins", async () => {
    const other = await signUp(device("198.51.100.99", "x"), "other@else.example", "Else");
    const refused = await laptop()("GET", `/v1/organisations/${owner.orgId}/security-notices`, { token: other.token });
    expect(refused.status).toBe(404); // another organisation's: not even its existence is shown
    const kinds = (await notices()).map((n) => n.data.notice);
    expect(kinds).not.toContain("sign-in.first-device"); // remembered, not announced
    expect(kinds).toEqual(expect.arrayContaining(["sign-in.new-device", "sign-in.repeated-failures", "api-key.created"]));
  });
});
