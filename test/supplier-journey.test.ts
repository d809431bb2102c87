// The supplier journey end to end — a helpdesk signs up, starts a conversation about a ticket
// and invites a supplier by email; the supplier opens the link, joins live and writes; the
// helpdesk sees it — and every way in that must stay shut.

import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import { appendMessage, ErrorCode, readMessages } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";
import { waitUntil } from "./helpers/wait.ts";

const PASSWORD = "violet-harbour-tractor-91!";
let clock = Date.now();
let sink: SmtpSink;
let server: TestServer;
let api: ReturnType<typeof apiClient>;
const clients: ParleyClient[] = [];

beforeAll(async () => {
  sink = await startSmtpSink();
  server = await startTestServer({
    env: {
      PARLEY_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
      PARLEY_ALLOWED_ORIGINS: "https://app.example",
      PARLEY_TRUST_PROXY: "true",
    },
    now: () => clock,
  });
  api = apiClient(server.httpUrl);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server.cleanup();
  await sink.close();
});

function sdk(accessToken: string): ParleyClient {
  const client = new ParleyClient({ url: server.url, token: async () => accessToken, WebSocket: WebSocket as unknown as WebSocketConstructor });
  clients.push(client);
  return client;
}

async function signUp(email: string, organisation: string) {
  const response = await confirmedSignUp(api, { email, password: PASSWORD, name: email.split("@")[0], organisation });
  expect(response.status).toBe(201);
  return response.body as { accessToken: string; refreshToken: string; user: { id: string }; organisation: { id: string } };
}

async function invitationLink(to: string): Promise<string> {
  const mail = await sink.waitFor((m) => m.to.includes(to) && m.subject.includes("invited you"));
  const match = /(http:\/\/\S+\/invite\/[A-Za-z0-9_-]+)/.exec(mail.text);
  if (!match) throw new Error(`no link in: ${mail.text}`);
  return new URL(match[1]).pathname;
}

describe("the supplier journey", () => {
  let helpdesk: Awaited<ReturnType<typeof signUp>>;
  let conversationId: string;
  let supplierLink: string;
  let supplier: { accessToken: string; deviceToken: string; userId: string };

  it("lets a helpdesk sign up and start a conversation about a ticket, inviting a supplier", async () => {
    helpdesk = await signUp("ann@helpdesk.example", "Helpdesk BV");
    const created = await api("POST", "/v1/conversations", {
      token: helpdesk.accessToken,
      body: { title: "Broken boiler", externalRef: "TICKET-42", invitations: [{ email: "sam@supplier.example" }] },
    });
    expect(created.status).toBe(201);
    conversationId = created.body.id as string;
    expect(created.body).toMatchObject({ externalRef: "TICKET-42", status: "open", role: "writer" });
    supplierLink = await invitationLink("sam@supplier.example");
    const listed = await api("GET", "/v1/conversations?externalRef=TICKET-42", { token: helpdesk.accessToken });
    expect((listed.body.items as { id: string }[]).map((c) => c.id)).toEqual([conversationId]);
  });

  it("shows the invitation on GET without using it, and signs the supplier in on POST", async () => {
    const page = await api("GET", supplierLink);
    expect(page.status).toBe(200);
    expect(page.body.html).toContain('<form method="post">');
    const accepted = await api("POST", supplierLink, { body: {} });
    expect(accepted.status).toBe(200);
    expect(accepted.body.conversationId).toBe(conversationId);
    expect(accepted.headers.get("set-cookie")).toContain("HttpOnly");
    supplier = accepted.body as unknown as typeof supplier;
  });

  it("lets the supplier join live and write, and the helpdesk sees it", async () => {
    const me = await api("GET", "/v1/me", { token: supplier.accessToken });
    const supplierOrg = (me.body.organisation as { id: string }).id;
    const supplierSide = sdk(supplier.accessToken).open(conversationId);
    const helpdeskSide = sdk(helpdesk.accessToken).open(conversationId);
    await Promise.all([supplierSide.whenSynced(), helpdeskSide.whenSynced()]);
    expect(supplierSide.status.role).toBe("writer");
    appendMessage(supplierSide.doc, { id: "m1", authorUser: supplier.userId, authorOrg: supplierOrg, text: "On my way", createdAt: clock });
    await supplierSide.whenSaved();
    await waitUntil(() => readMessages(helpdeskSide.doc).some((m) => m.text === "On my way"));
    const messages = await api("GET", `/v1/conversations/${conversationId}/messages`, { token: helpdesk.accessToken });
    expect((messages.body.items as { text: string }[]).map((m) => m.text)).toContain("On my way");
    // A message posted over HTTP goes through the same audited write path and reaches sockets.
    const posted = await api("POST", `/v1/conversations/${conversationId}/messages`, { token: helpdesk.accessToken, body: { text: "Thanks!" } });
    expect(posted.status).toBe(201);
    await waitUntil(() => readMessages(supplierSide.doc).some((m) => m.text === "Thanks!"));
    const entries = await server.server.store.readEntries(conversationId, 0, 100);
    expect(entries.map((e) => e.user)).toEqual(expect.arrayContaining([supplier.userId, helpdesk.user.id]));
  });

  it("asks a second device for a code emailed to the invited address", async () => {
    const again = await api("POST", supplierLink, { body: {} });
    expect(again.status).toBe(401);
    expect(again.body.error?.code).toBe(ErrorCode.DeviceCodeRequired);
    const mail = await sink.waitFor((m) => m.to.includes("sam@supplier.example") && m.subject.includes("code"));
    const code = /(\d{6})/.exec(mail.text)?.[1];
    const wrong = await api("POST", supplierLink, { body: { code: code === "000000" ? "111111" : "000000" } });
    expect(wrong.status).toBe(401);
    const right = await api("POST", supplierLink, { body: { code } });
    expect(right.status).toBe(200);
    const reused = await api("POST", supplierLink, { body: { code } });
    expect(reused.status).toBe(401);
    const sameDevice = await api("POST", supplierLink, { body: { deviceToken: supplier.deviceToken } });
    expect(sameDevice.status).toBe(200);
  });

  describe("denials", () => {
    it("hides a conversation from another organisation (404), over HTTP and on sockets", async () => {
      const other = await signUp("olly@other.example", "Other Ltd");
      expect((await api("GET", `/v1/conversations/${conversationId}`, { token: other.accessToken })).status).toBe(404);
      expect((await api("GET", "/v1/conversations/cnv_doesnotexist", { token: other.accessToken })).status).toBe(404);
      const socket = await RawClient.authenticated(server.url, other.accessToken);
      socket.control({ type: "join", conversation: conversationId });
      expect(await socket.waitForControl("error")).toMatchObject({ code: ErrorCode.Forbidden, request: "join" });
      socket.close();
    });

    it("refuses another organisation's API key", async () => {
      const other = await signUp("kim@keys.example", "Keys Inc");
      const key = await api("POST", `/v1/organisations/${other.organisation.id}/api-keys`, {
        token: other.accessToken,
        body: { name: "ticketing", scopes: ["conversations:read", "conversations:write"] },
      });
      expect(key.status).toBe(201);
      const apiKey = key.body.key as string;
      expect((await api("GET", `/v1/conversations/${conversationId}`, { token: apiKey })).status).toBe(404);
      expect((await api("POST", `/v1/conversations/${conversationId}/messages`, { token: apiKey, body: { text: "x" } })).status).toBe(404);
      // Its own conversations work, and a revoked key stops at once.
      const own = await api("POST", "/v1/conversations", { token: apiKey, body: { title: "From the ticketing system", externalRef: "T-1" } });
      expect(own.status).toBe(201);
      await api("DELETE", `/v1/organisations/${other.organisation.id}/api-keys/${key.body.id}`, { token: other.accessToken });
      expect((await api("GET", "/v1/conversations", { token: apiKey })).status).toBe(401);
    });

    it("refuses a revoked invitation", async () => {
      const created = await api("POST", `/v1/conversations/${conversationId}/invitations`, { token: helpdesk.accessToken, body: { email: "rev@supplier.example" } });
      const link = await invitationLink("rev@supplier.example");
      expect((await api("DELETE", `/v1/invitations/${created.body.id}`, { token: helpdesk.accessToken })).status).toBe(204);
      const used = await api("POST", link, { body: {} });
      expect(used.status).toBe(410);
      expect(used.body.error?.code).toBe(ErrorCode.InvitationInvalid);
    });

    it("refuses an expired invitation", async () => {
      await api("POST", `/v1/conversations/${conversationId}/invitations`, { token: helpdesk.accessToken, body: { email: "late@supplier.example" } });
      const link = await invitationLink("late@supplier.example");
      clock += 15 * 24 * 3600 * 1000;
      try {
        expect((await api("POST", link, { body: {} })).status).toBe(410);
        expect((await api("GET", link)).status).toBe(410);
      } finally {
        clock -= 15 * 24 * 3600 * 1000;
      }
    });

    it("refuses a TOTP code used twice", async () => {
      const person = await signUp("tia@totp.example", "Totp BV");
      const enrol = await api("POST", "/v1/auth/2fa/enrol", { token: person.accessToken });
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret as string) });
      const code = totp.generate({ timestamp: clock });
      const verified = await api("POST", "/v1/auth/2fa/verify", { token: person.accessToken, body: { code } });
      expect(verified.status).toBe(200);
      expect(verified.body.recoveryCodes).toHaveLength(10);
      const login = (c?: string) => api("POST", "/v1/auth/login", { body: { email: "tia@totp.example", password: PASSWORD, totp: c } });
      expect((await login()).body.error?.code).toBe(ErrorCode.TwoFactorRequired);
      // The code that confirmed enrolment is spent; the next step's code works once.
      expect((await login(code)).body.error?.code).toBe(ErrorCode.InvalidTwoFactorCode);
      clock += 30_000;
      const next = totp.generate({ timestamp: clock });
      expect((await login(next)).status).toBe(200);
      expect((await login(next)).body.error?.code).toBe(ErrorCode.InvalidTwoFactorCode);
      const recovery = await api("POST", "/v1/auth/login", {
        body: { email: "tia@totp.example", password: PASSWORD, recoveryCode: (verified.body.recoveryCodes as string[])[0] },
      });
      expect(recovery.status).toBe(200);
    });

    it("revokes the whole session when a refresh token is reused", async () => {
      const login = await api("POST", "/v1/auth/login", { body: { email: "ann@helpdesk.example", password: PASSWORD } });
      const first = login.body.refreshToken as string;
      const second = await api("POST", "/v1/auth/refresh", { body: { refreshToken: first } });
      const rotated = await api("POST", "/v1/auth/refresh", { body: { refreshToken: second.body.refreshToken } });
      expect(rotated.status).toBe(200);
      const socket = await RawClient.authenticated(server.url, rotated.body.accessToken as string);
      // The first token again, its successor used meanwhile: not a lost answer's retry (the reuse
      // grace, test/refresh-reuse-grace.test.ts) but a copy.
      const replayed = await api("POST", "/v1/auth/refresh", { body: { refreshToken: first } });
      expect(replayed.body.error?.code).toBe(ErrorCode.InvalidRefreshToken);
      // The stolen family is dead: the newer token fails too, and its socket was closed.
      expect((await api("POST", "/v1/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } })).status).toBe(401);
      expect(await socket.closed(1000)).toBe(4403);
      expect((await api("GET", "/v1/me", { token: rotated.body.accessToken as string })).status).toBe(401);
    });

    it("closes a person's sockets within a second of signing out", async () => {
      const login = await api("POST", "/v1/auth/login", { body: { email: "ann@helpdesk.example", password: PASSWORD } });
      const token = login.body.accessToken as string;
      const socket = await RawClient.authenticated(server.url, token);
      const started = Date.now();
      expect((await api("POST", "/v1/auth/logout", { token, body: {} })).status).toBe(204);
      expect(await socket.closed(1000)).toBe(4403);
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it("refuses writes from an observer organisation", async () => {
      const observer = await signUp("obi@observer.example", "Observer AG");
      await api("POST", `/v1/conversations/${conversationId}/participants`, {
        token: helpdesk.accessToken,
        body: { organisation: observer.organisation.id, role: "observer" },
      });
      const read = await api("GET", `/v1/conversations/${conversationId}`, { token: observer.accessToken });
      expect(read.body.role).toBe("observer");
      const posted = await api("POST", `/v1/conversations/${conversationId}/messages`, { token: observer.accessToken, body: { text: "hi" } });
      expect(posted.status).toBe(403);
      expect(posted.body.error?.code).toBe(ErrorCode.ReadOnly);
      const socket = await RawClient.authenticated(server.url, observer.accessToken);
      socket.control({ type: "join", conversation: conversationId });
      expect(await socket.waitForControl("joined")).toMatchObject({ role: "observer" });
      // Removing the organisation takes it out of the conversation at once.
      await api("DELETE", `/v1/conversations/${conversationId}/participants/${observer.organisation.id}`, { token: helpdesk.accessToken });
      expect(await socket.waitForControl("left", (m) => m.conversation === conversationId)).toMatchObject({ code: ErrorCode.Forbidden });
      socket.close();
    });

    it("refuses an Origin outside the allowlist, over HTTP and for sockets", async () => {
      const bad = await api("GET", "/v1/me", { token: helpdesk.accessToken, headers: { origin: "https://evil.example" } });
      expect(bad.status).toBe(403);
      expect(bad.body.error?.code).toBe(ErrorCode.OriginNotAllowed);
      const good = await api("GET", "/healthz", { headers: { origin: "https://app.example" } });
      expect(good.status).toBe(200);
      await expect(RawClient.connect(server.url, { origin: "https://evil.example" })).rejects.toThrow();
    });

    it("refuses an address outside the organisation's IP allowlist", async () => {
      const org = await signUp("ivy@iponly.example", "Ip Only");
      const fromOffice = { "x-forwarded-for": "198.51.100.7" };
      const set = await api("PATCH", `/v1/organisations/${org.organisation.id}`, {
        token: org.accessToken,
        headers: fromOffice,
        body: { ipAllowlist: ["198.51.100.0/24"] },
      });
      expect(set.status).toBe(200);
      expect((await api("GET", "/v1/me", { token: org.accessToken, headers: fromOffice })).status).toBe(200);
      const outside = await api("GET", "/v1/me", { token: org.accessToken, headers: { "x-forwarded-for": "203.0.113.9" } });
      expect(outside.status).toBe(403);
      expect(outside.body.error?.code).toBe(ErrorCode.IpNotAllowed);
    });

    it("refuses a weak or breached password with its score", async () => {
      const weak = await api("POST", "/v1/signup", { body: { email: "w@weak.example", password: "password1", name: "W", organisation: "Weak" } });
      expect(weak.status).toBe(422);
      expect(weak.body.error).toMatchObject({ code: ErrorCode.WeakPassword });
      expect(typeof (weak.body.error as unknown as { score: number }).score).toBe("number");
    });
  });

  it("describes the whole API in /openapi.json and publishes its keys", async () => {
    const doc = await api("GET", "/openapi.json");
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths as object)).toEqual(expect.arrayContaining(["/v1/signup", "/v1/conversations/{id}/messages", "/invite/{token}"]));
    const jwks = await api("GET", "/.well-known/jwks.json");
    expect((jwks.body.keys as { kty: string }[])[0]).toMatchObject({ kty: "OKP", alg: "EdDSA" });
  });
});
