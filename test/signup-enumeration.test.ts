// Sign-up tried as someone who wants to know whether a person has an account: the answer to an
// address with an account is the same as to a new one (status, body, headers), the account is
// left exactly as it was and its owner is told by mail; a new address gets a single-use link that
// creates the organisation only when its mailbox confirms it (a GET uses nothing: mail scanners).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { allMail, mailSeen, waitForNewMail } from "./helpers/mailboxes.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { CONFIRM_SUBJECT, type SignedUp, signUp, signUpLink, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";

let sink: SmtpSink;
let server: TestServer;
let api: ReturnType<typeof apiClient>;
let clock = Date.now();

beforeAll(async () => {
  sink = await startSmtpSink();
  server = await startTestServer({ env: { PARLEY_SMTP_URL: `smtp://127.0.0.1:${sink.port}` }, now: () => clock });
  api = apiClient(server.httpUrl);
});
afterAll(async () => {
  await server.cleanup();
  await sink.close();
});

const ATTACKER_PASSWORD = "amber-lantern-quarry-57?";
const ask = (email: string, password = ATTACKER_PASSWORD) => api("POST", "/v1/signup", { body: { email, password, name: "Someone", organisation: "Probe Ltd" } });
const login = (email: string, password: string) => api("POST", "/v1/auth/login", { body: { email, password } });

/** Everything a client can see of an answer: every header by name, and by value all but the clock and the request's own id. */
function observable(response: ApiResponse) {
  const perRequest = new Set(["date", "x-request-id"]);
  const headers = [...response.headers.entries()].map(([name, value]) => [name, perRequest.has(name) ? "(per request)" : value]);
  return { status: response.status, body: response.body, headers };
}

describe("sign-up does not tell which addresses have an account", () => {
  let owner: SignedUp;
  beforeAll(async () => {
    owner = await signUp(api, "known@victim.example", "Victim Ltd");
  });

  it("answers an address with an account exactly like a new one: status, body and headers", async () => {
    const known = await ask("known@victim.example");
    const unknown = await ask("unknown@victim.example");
    expect(known.status).toBe(202);
    expect(observable(known)).toEqual(observable(unknown));
    // Nothing in the answer to act on: no token, no id, no cookie.
    expect(JSON.stringify(known.body)).not.toMatch(/usr_|org_|Token/);
    expect(known.headers.get("set-cookie")).toBeNull();
    // Case and surrounding spelling of a known address change nothing either.
    expect(observable(await ask("KNOWN@victim.example"))).toEqual(observable(await ask("unknown2@victim.example")));
  });

  it("leaves the known address's account as it was, and tells its owner by mail (with no link)", async () => {
    const seen = await mailSeen();
    expect((await ask("known@victim.example")).status).toBe(202);
    const notice = await waitForNewMail(seen, (m) => m.to.includes("known@victim.example"));
    expect(notice.subject).toBe("Someone tried to sign up to Parley with your address");
    expect(notice.text).toContain("already has a Parley account");
    expect(notice.text).not.toMatch(/\/signup\/[A-Za-z0-9_-]{20,}/);
    expect(notice.subject).not.toBe(CONFIRM_SUBJECT);
    // The one mail of this request (sent before the answer) is the notice: no confirmation link went out.
    const mailed = (await allMail()).filter((m) => !seen.has(m.id) && m.to.includes("known@victim.example"));
    expect(mailed.map((m) => m.subject)).toEqual([notice.subject]);
    // The account: the same password, one membership, the same organisation; the prober's password opens nothing.
    expect((await login("known@victim.example", ATTACKER_PASSWORD)).status).toBe(401);
    const signedIn = await login("known@victim.example", TEST_PASSWORD);
    expect(signedIn.status).toBe(200);
    const me = await api("GET", "/v1/me", { token: signedIn.body.accessToken as string });
    expect(me.body.user).toMatchObject({ id: owner.userId, email: "known@victim.example", name: "known" });
    expect((me.body.memberships as { orgId: string }[]).map((m) => m.orgId)).toEqual([owner.orgId]);
  }, 30_000);

  it("creates nothing before the link is confirmed; the link's GET uses nothing; its POST works once", async () => {
    const seen = await mailSeen();
    expect((await ask("new@fresh.example", TEST_PASSWORD)).status).toBe(202);
    const link = await signUpLink("new@fresh.example", seen);
    expect((await login("new@fresh.example", TEST_PASSWORD)).status).toBe(401);
    // A mail scanner (or the person) opens the page: twice, nothing used.
    for (let i = 0; i < 2; i++) {
      const page = await fetch(`${server.httpUrl}${link}`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("new@fresh.example");
      expect(html).toContain('<form method="post">');
      expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    }
    expect((await login("new@fresh.example", TEST_PASSWORD)).status).toBe(401);
    const confirmed = await api("POST", link, { body: {} });
    expect(confirmed.status).toBe(201);
    expect(confirmed.body).toMatchObject({ tokenType: "Bearer", user: { email: "new@fresh.example", name: "Someone" }, organisation: { name: "Probe Ltd" } });
    expect((await login("new@fresh.example", TEST_PASSWORD)).status).toBe(200);
    // Single use: the same link again, and its page, say it is spent.
    const again = await api("POST", link, { body: {} });
    expect([again.status, again.body.error?.code]).toEqual([410, ErrorCode.SignupLinkInvalid]);
    expect((await fetch(`${server.httpUrl}${link}`)).status).toBe(410);
  }, 30_000);

  it("a second confirmation link for an address that got its account meanwhile creates nothing", async () => {
    const seenFirst = await mailSeen();
    expect((await ask("twice@fresh.example", TEST_PASSWORD)).status).toBe(202);
    const first = await signUpLink("twice@fresh.example", seenFirst);
    const seenSecond = await mailSeen();
    expect((await ask("twice@fresh.example", "other-copper-meadow-38!")).status).toBe(202);
    const second = await signUpLink("twice@fresh.example", seenSecond);
    expect((await api("POST", first, { body: {} })).status).toBe(201);
    const late = await api("POST", second, { body: {} });
    expect([late.status, late.body.error?.code]).toEqual([409, ErrorCode.Conflict]);
    expect((await login("twice@fresh.example", TEST_PASSWORD)).status).toBe(200);
    expect((await login("twice@fresh.example", "other-copper-meadow-38!")).status).toBe(401);
  }, 30_000);

  it("a browser's form POST gets the session cookie and goes into the web app", async () => {
    const seen = await mailSeen();
    expect((await ask("browser@fresh.example", TEST_PASSWORD)).status).toBe(202);
    const link = await signUpLink("browser@fresh.example", seen);
    const response = await fetch(`${server.httpUrl}${link}`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "text/html" },
      body: "",
    });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/#/");
    expect(response.headers.getSetCookie().some((c) => c.startsWith("parley_refresh="))).toBe(true);
  }, 30_000);

  it("a link expires after 24 hours", async () => {
    const seen = await mailSeen();
    expect((await ask("late@fresh.example", TEST_PASSWORD)).status).toBe(202);
    const link = await signUpLink("late@fresh.example", seen);
    clock += 24 * 3600_000 + 1;
    try {
      const expired = await api("POST", link, { body: {} });
      expect([expired.status, expired.body.error?.code]).toEqual([410, ErrorCode.SignupLinkInvalid]);
      expect((await login("late@fresh.example", TEST_PASSWORD)).status).toBe(401);
    } finally {
      clock -= 24 * 3600_000 + 1;
    }
  }, 30_000);

  it("limits the mails one address gets, the same way whether or not it has an account", async () => {
    const answers = async (email: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await ask(email)).status);
      return statuses;
    };
    // Both addresses start from one sign-up request each.
    await signUp(api, "probed@victim.example", "Probed Ltd");
    expect((await ask("flooded@fresh.example")).status).toBe(202);
    const known = await answers("probed@victim.example");
    const unknown = await answers("flooded@fresh.example");
    expect(known).toEqual(unknown);
    expect(known.filter((s) => s === 429).length).toBeGreaterThan(0);
    const refused = await ask("flooded@fresh.example");
    expect(refused.headers.get("retry-after")).not.toBeNull();
  }, 60_000);

  it("refuses a weak password before anything else, for every address alike", async () => {
    const known = await ask("known@victim.example", "password1");
    const unknown = await ask("weak@fresh.example", "password1");
    expect([known.status, known.body.error?.code]).toEqual([422, ErrorCode.WeakPassword]);
    expect(observable(known)).toEqual(observable(unknown));
  });
});
