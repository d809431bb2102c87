// Account security changes commit with their audit entries: when the organisation audit append
// fails (a trigger refuses it), a sign-in starts no session and spends no recovery code or key
// counter, two-factor stays as it was, a security key is neither added nor removed, and the
// person gets a clear answer (503, StoreUnavailable, "… could not be recorded in the audit
// trail …"). On SQLite and on Postgres.

import * as OTPAuth from "otpauth";
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { AUDIT_BACKENDS, type RefusableAuditServer, serverPerSuite } from "./helpers/audit-refusal.ts";
import type { ApiResponse } from "./helpers/http-client.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { SoftAuthenticator } from "./helpers/soft-authenticator.ts";

describe.each(AUDIT_BACKENDS)("account changes whose audit entry cannot be written do not happen ($name)", (backend) => {
  const suite = serverPerSuite(backend);
  let running: RefusableAuditServer | null = null;
  const api: RefusableAuditServer["api"] = (...request) => (running as RefusableAuditServer).api(...request);
  beforeAll(() => {
    running = suite();
  });


  function expectRefusedForAudit(response: ApiResponse, what: string): void {
    expect(response.status).toBe(503);
    const error = (response.body as { error: { code: number; message: string } }).error;
    expect(error.code).toBe(ErrorCode.StoreUnavailable);
    expect(error.message).toContain(`${what} could not be recorded in the audit trail`);
  }

  const entries = async (who: SignedUp) => (await running?.server.server.audit.log.readOrgAuditEntries(who.orgId, 0, 1000)) ?? [];
  const login = (email: string, extra: Record<string, unknown> = {}) => api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD, ...extra } });

  it("a sign-in starts no session", async (context) => {
    if (!running) return context.skip();
    const owner = await signUp(api, "sina@refused.example", "Sign-in Refused");
    const sessions = await running.count("refresh_tokens", "user_id = ?", [owner.userId]);
    const before = await entries(owner);
    expectRefusedForAudit(await running.whileRefused(() => login("sina@refused.example")), "the sign-in");
    expect(await running.count("refresh_tokens", "user_id = ?", [owner.userId])).toBe(sessions);
    expect(await entries(owner)).toEqual(before);
    // With the audit trail back, the same sign-in works and is recorded.
    expect((await login("sina@refused.example")).status).toBe(200);
    expect((await entries(owner)).map((e) => e.action)).toContain("login.succeeded");
  });

  it("two-factor stays off, then on, then a recovery code stays unspent", async (context) => {
    if (!running) return context.skip();
    const email = "tomas@refused.example";
    const owner = await signUp(api, email, "Two-factor Refused");
    const enrol = await api("POST", "/v1/auth/2fa/enrol", { token: owner.token });
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret as string) });
    const twoFactor = async () => ((await api("GET", "/v1/me", { token: owner.token })).body.user as { twoFactor: boolean }).twoFactor;

    // Turning it on: refused, so still off and no recovery codes stored.
    expectRefusedForAudit(await running.whileRefused(() => api("POST", "/v1/auth/2fa/verify", { token: owner.token, body: { code: totp.generate() } })), "turning two-factor on");
    expect(await twoFactor()).toBe(false);
    expect(await running.count("recovery_codes", "user_id = ?", [owner.userId])).toBe(0);
    expect((await entries(owner)).map((e) => e.action)).not.toContain("2fa.enabled");

    // On for real (the next TOTP step: the refused attempt spent the current one).
    const on = await api("POST", "/v1/auth/2fa/verify", { token: owner.token, body: { code: totp.generate({ timestamp: Date.now() + 30_000 }) } });
    expect(on.status).toBe(200);
    const [first, second] = on.body.recoveryCodes as string[];

    // A sign-in with a recovery code: refused, the code stays unspent, no session.
    const sessions = await running.count("refresh_tokens", "user_id = ?", [owner.userId]);
    expectRefusedForAudit(await running.whileRefused(() => login(email, { recoveryCode: first })), "the sign-in");
    expect(await running.count("refresh_tokens", "user_id = ?", [owner.userId])).toBe(sessions);
    expect((await entries(owner)).map((e) => e.action)).not.toContain("2fa.recovery-code-used");

    // Turning it off with a recovery code: refused, still on, that code unspent too.
    expectRefusedForAudit(await running.whileRefused(() => api("POST", "/v1/auth/2fa/disable", { token: owner.token, body: { recoveryCode: second } })), "turning two-factor off");
    expect(await twoFactor()).toBe(true);

    // Both codes still work once the audit trail takes entries again, and each use is recorded.
    const signedIn = await login(email, { recoveryCode: first });
    expect(signedIn.status).toBe(200);
    expect((await api("POST", "/v1/auth/2fa/disable", { token: signedIn.body.accessToken as string, body: { recoveryCode: second } })).status).toBe(204);
    expect(await twoFactor()).toBe(false);
    const actions = (await entries(owner)).map((e) => e.action);
    expect(actions.filter((a) => a === "2fa.recovery-code-used")).toHaveLength(2);
    expect(actions).toContain("2fa.disabled");
  });

  it("a security key is neither registered, used nor removed", async (context) => {
    if (!running) return context.skip();
    const email = "kees@refused.example";
    const owner = await signUp(api, email, "Keys Refused");
    const rp = new URL(running.server.httpUrl);
    const key = new SoftAuthenticator(rp.hostname, rp.origin);
    const register = async () => {
      const started = await api("POST", "/v1/auth/webauthn/register/options", { token: owner.token, body: {} });
      return api("POST", "/v1/auth/webauthn/register", {
        token: owner.token,
        body: { name: "YubiKey", challengeToken: started.body.challengeToken, response: key.register(started.body.options as never) },
      });
    };
    const listed = async () => (await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token })).body.items as { id: string; lastUsedAt: number | null }[];

    expectRefusedForAudit(await running.whileRefused(register), "registering the key");
    expect(await listed()).toEqual([]);
    // The first key's recovery codes go with its registration: none stored either.
    expect(await running.count("recovery_codes", "user_id = ?", [owner.userId])).toBe(0);
    const registered = await register();
    expect(registered.status).toBe(201);
    expect(registered.body.recoveryCodes).toHaveLength(10);
    expect(await running.count("recovery_codes", "user_id = ?", [owner.userId])).toBe(10);
    const [stored] = await listed();

    // A passwordless sign-in with it: refused, so no session and the key shows no use.
    const passkey = async () => {
      const started = await api("POST", "/v1/auth/webauthn/login/options", { body: { email } });
      return api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: started.body.challengeToken, response: key.assert(started.body.options as never) } });
    };
    const sessions = await running.count("refresh_tokens", "user_id = ?", [owner.userId]);
    expectRefusedForAudit(await running.whileRefused(passkey), "the sign-in");
    expect(await running.count("refresh_tokens", "user_id = ?", [owner.userId])).toBe(sessions);
    expect((await listed())[0].lastUsedAt).toBeNull();
    expect((await passkey()).status).toBe(200);

    expectRefusedForAudit(await running.whileRefused(() => api("DELETE", `/v1/auth/webauthn/credentials/${stored.id}`, { token: owner.token })), "removing the key");
    expect((await listed()).map((k) => k.id)).toEqual([stored.id]);
    // It was the last second factor, and its codes stay with it.
    expect(await running.count("recovery_codes", "user_id = ?", [owner.userId])).toBe(10);
    expect((await entries(owner)).map((e) => e.action)).toEqual(expect.arrayContaining(["webauthn.registered", "webauthn.used"]));
    expect((await entries(owner)).map((e) => e.action)).not.toContain("webauthn.removed");
  });
});
