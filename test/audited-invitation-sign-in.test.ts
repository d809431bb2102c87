// A conversation invitation link signs its invitee in like a password does (and an account it
// creates gets its personal organisation with that chain's first entry, "organisation.created"): each session (first
// use, a bound device's token, an e-mailed device code) commits with a "login.succeeded" entry in
// the invitee organisation's chain, address and browser only as keyed hashes. When that entry is
// refused (a trigger on just those entries), there is no session and nothing is spent: the link
// stays unbound, the device code stays good. On SQLite and on Postgres.

import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { AUDIT_BACKENDS, type RefusableAuditServer, serverPerSuite } from "./helpers/audit-refusal.ts";
import type { ApiResponse } from "./helpers/http-client.ts";
import { mailSeen, waitForNewMail } from "./helpers/mailboxes.ts";
import { signUp } from "./helpers/sign-up.ts";

/** Only the invitation sign-ins' entries carry `scope`: the link's other entries go through. */
const SIGN_IN_ENTRIES = '%"scope":%';

describe.each(AUDIT_BACKENDS)("invitation sign-ins are recorded with their session or do not happen ($name)", (backend) => {
  const suite = serverPerSuite(backend);
  let running: RefusableAuditServer | null = null;
  const api: RefusableAuditServer["api"] = (...request) => (running as RefusableAuditServer).api(...request);
  beforeAll(() => {
    running = suite();
  });

  function expectRefusedForAudit(response: ApiResponse): void {
    expect(response.status).toBe(503);
    const error = (response.body as { error: { code: number; message: string } }).error;
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toContain("the sign-in could not be recorded in the audit trail");
  }

  it("first use, a bound device and a device code each write login.succeeded, or sign nobody in", async (context) => {
    if (!running) return context.skip();
    const desk = await signUp(api, "dora@inviting.example", "Inviting Desk");
    const conversation = (await api("POST", "/v1/conversations", { token: desk.token, body: { title: "Valve" } })).body.id as string;
    const email = "lina@invitee.example";
    const seen = await mailSeen();
    expect((await api("POST", `/v1/conversations/${conversation}/invitations`, { token: desk.token, body: { email } })).status).toBe(201);
    const mail = await waitForNewMail(seen, (m) => m.to.includes(email) && m.text.includes("/invite/"));
    const link = (/\/invite\/[A-Za-z0-9_-]+/.exec(mail.text.replace(/=\r?\n/g, "")) as RegExpExecArray)[0];
    const invitationId = ((await api("GET", `/v1/conversations/${conversation}/invitations`, { token: desk.token })).body.items as { id: string }[])[0].id;
    const bound = () => running?.count("invitations", "id = ? AND user_id IS NOT NULL", [invitationId]);
    const logins = (userId: string) => running?.count("org_audit_entries", "action = ? AND actor = ? AND details LIKE ?", ["login.succeeded", `user:${userId}`, `%${invitationId}%`]);

    // First use: refused, so the link stays unbound and no session exists.
    expectRefusedForAudit(await running.whileRefused(() => api("POST", link, { body: {} }), SIGN_IN_ENTRIES));
    expect(await bound()).toBe(0);
    expect(await running.count("refresh_tokens", "user_id IN (SELECT id FROM users WHERE email = ?)", [email])).toBe(0);
    const first = await api("POST", link, { body: {} });
    expect(first.status).toBe(200);
    const userId = first.body.userId as string;
    const deviceToken = first.body.deviceToken as string;
    expect(await logins(userId)).toBe(1);
    const sessions = () => running?.count("refresh_tokens", "user_id = ?", [userId]);
    expect(await sessions()).toBe(1);

    // The entry is in the invitee's organisation chain, with no address or browser in clear.
    const inviteeOrg = ((await api("GET", "/v1/me", { token: first.body.accessToken as string })).body.organisation as { id: string }).id;
    const inviteeChain = await running.server.server.audit.log.readOrgAuditEntries(inviteeOrg, 0, 100);
    // The link made the account and its personal organisation: that chain starts with its creation.
    expect(inviteeChain[0]).toMatchObject({ seq: 1, action: "organisation.created", actor: `user:${userId}`, target: inviteeOrg, details: { role: "owner", via: "invitation" } });
    const entry = inviteeChain.find((e) => e.action === "login.succeeded");
    expect(entry).toMatchObject({ actor: `user:${userId}`, target: userId, details: { invitation: invitationId, conversation, scope: "account" } });
    expect(entry?.details.ipHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(entry)).not.toContain("127.0.0.1");
    expect((await running.server.server.audit.log.readOrgAuditEntries(desk.orgId, 0, 100)).map((e) => e.action)).toContain("invitation.used");

    // The bound device coming back: refused, no new session; then recorded.
    expectRefusedForAudit(await running.whileRefused(() => api("POST", link, { body: { deviceToken } }), SIGN_IN_ENTRIES));
    expect(await sessions()).toBe(1);
    expect((await api("POST", link, { body: { deviceToken } })).status).toBe(200);
    expect(await logins(userId)).toBe(2);

    // Another device with the mailed code: refused, the code stays good and works after.
    const codeSeen = await mailSeen();
    expect((await api("POST", link, { body: {} })).status).toBe(401);
    const codeMail = await waitForNewMail(codeSeen, (m) => m.to.includes(email) && m.subject === "Your Parley sign-in code");
    const code = (/\b\d{6}\b/.exec(codeMail.text) as RegExpExecArray)[0];
    expectRefusedForAudit(await running.whileRefused(() => api("POST", link, { body: { code } }), SIGN_IN_ENTRIES));
    expect(await sessions()).toBe(2);
    expect((await api("POST", link, { body: { code } })).status).toBe(200);
    expect(await sessions()).toBe(3);
    expect(await logins(userId)).toBe(3);
  });

  it("an account the link would create is not created when its organisation's first entry is refused", async (context) => {
    if (!running) return context.skip();
    const desk = await signUp(api, "dirk@inviting.example", "Inviting Again");
    const conversation = (await api("POST", "/v1/conversations", { token: desk.token, body: { title: "Gasket" } })).body.id as string;
    const email = "nils@new-invitee.example";
    const seen = await mailSeen();
    expect((await api("POST", `/v1/conversations/${conversation}/invitations`, { token: desk.token, body: { email } })).status).toBe(201);
    const mail = await waitForNewMail(seen, (m) => m.to.includes(email) && m.text.includes("/invite/"));
    const link = (/\/invite\/[A-Za-z0-9_-]+/.exec(mail.text.replace(/=\r?\n/g, "")) as RegExpExecArray)[0];
    const refused = await running.whileRefused(() => api("POST", link, { body: {} }), '%"via":"invitation"%');
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(await running.count("users", "email = ?", [email])).toBe(0);
    expect((await api("POST", link, { body: {} })).status).toBe(200);
    expect(await running.count("users", "email = ?", [email])).toBe(1);
  });
});
