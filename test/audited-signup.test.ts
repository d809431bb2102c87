// A confirmed sign-up creates its organisation with the chain's first entry, "organisation.created"
// (actor the new owner, the address only as a keyed hash), in the same transaction: when the
// append is refused (a trigger), no organisation or account exists, the link is not spent and
// works once the audit trail takes entries again. The session it starts is recorded as a sign-in
// ("login.succeeded", `signup: true`), or not started. A link confirmed after its address got an
// account creates nothing and writes no entry. On SQLite and on Postgres.

import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { AUDIT_BACKENDS, type RefusableAuditServer, serverPerSuite } from "./helpers/audit-refusal.ts";
import { mailSeen } from "./helpers/mailboxes.ts";
import { signUpLink, TEST_PASSWORD } from "./helpers/sign-up.ts";

describe.each(AUDIT_BACKENDS)("a sign-up is recorded with its organisation or not at all ($name)", (backend) => {
  const suite = serverPerSuite(backend);
  let running: RefusableAuditServer | null = null;
  const api: RefusableAuditServer["api"] = (...request) => (running as RefusableAuditServer).api(...request);
  beforeAll(() => {
    running = suite();
  });

  /** Asks to sign `email` up and answers the path of the mailed link. */
  const requestLink = async (email: string, organisation: string) => {
    const seen = await mailSeen();
    expect((await api("POST", "/v1/signup", { body: { email, password: TEST_PASSWORD, name: "Owner", organisation } })).status).toBe(202);
    return signUpLink(email, seen);
  };
  const created = () => running?.count("org_audit_entries", "action = ?", ["organisation.created"]) ?? Promise.resolve(0);

  it("the confirmation writes organisation.created, without the address in clear", async (context) => {
    if (!running) return context.skip();
    const email = "olga@founded.example";
    const confirmed = await api("POST", await requestLink(email, "Founded"), { body: {} });
    expect(confirmed.status).toBe(201);
    const orgId = (confirmed.body.organisation as { id: string }).id;
    const userId = (confirmed.body.user as { id: string }).id;
    const entries = await running.server.server.audit.log.readOrgAuditEntries(orgId, 0, 1000);
    expect(entries[0]).toMatchObject({ seq: 1, action: "organisation.created", actor: `user:${userId}`, target: orgId, details: { role: "owner" } });
    expect(entries[0].details.emailHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(entries[0])).not.toContain("olga");
    // The session it starts is a sign-in like any other: recorded with it.
    expect(entries[1]).toMatchObject({ seq: 2, action: "login.succeeded", actor: `user:${userId}`, target: userId, details: { signup: true } });
    expect(entries[1].details.ipHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refused, the sign-in after the sign-up starts no session; the password signs in", async (context) => {
    if (!running) return context.skip();
    const email = "sven@session-refused.example";
    const link = await requestLink(email, "Session Refused");
    const refused = await running.whileRefused(() => api("POST", link, { body: {} }), '%"signup":true%');
    expect(refused.status).toBe(503);
    expect((refused.body as { error: { message: string } }).error.message).toContain("sign in with your password");
    expect(await running.count("refresh_tokens", "user_id IN (SELECT id FROM users WHERE email = ?)", [email])).toBe(0);
    expect((await api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD } })).status).toBe(200);
  });

  it("refused, no organisation is created and the link stays unspent", async (context) => {
    if (!running) return context.skip();
    const email = "rafa@refused-signup.example";
    const link = await requestLink(email, "Refused Founding");
    const organisations = await running.count("organisations");
    const before = await created();
    const refused = await running.whileRefused(() => api("POST", link, { body: {} }));
    expect(refused.status).toBe(503);
    const error = (refused.body as { error: { code: number; message: string } }).error;
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toContain("could not be recorded in the audit trail");
    expect(await running.count("organisations")).toBe(organisations);
    expect(await running.count("users", "email = ?", [email])).toBe(0);
    expect(await created()).toBe(before);
    // The same link works once the audit trail takes entries again.
    expect((await api("POST", link, { body: {} })).status).toBe(201);
    expect(await created()).toBe(before + 1);
  });

  it("a link confirmed after its address got an account creates nothing and writes no entry", async (context) => {
    if (!running) return context.skip();
    const email = "twice@founded.example";
    const first = await requestLink(email, "First");
    const second = await requestLink(email, "Second");
    expect((await api("POST", first, { body: {} })).status).toBe(201);
    const organisations = await running.count("organisations");
    const before = await created();
    expect((await api("POST", second, { body: {} })).status).toBe(409);
    expect(await running.count("organisations")).toBe(organisations);
    expect(await created()).toBe(before);
  });
});
