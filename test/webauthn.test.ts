// Security keys and passkeys at the API level, with a software authenticator: several keys per
// person, named, renamed and removed; a key as the second factor after the password and as a
// passwordless sign-in (which must verify the person); refused when the answer is for another
// origin, another challenge, an unregistered key or a counter that went backwards (a clone);
// every registration, use and removal in the organisation's audit chain, a removal a notice.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { SoftAuthenticator } from "./helpers/soft-authenticator.ts";

let server: TestServer;
let api: ReturnType<typeof apiClient>;
let owner: SignedUp;
const EMAIL = "keys@helpdesk.example";
let laptopKey: SoftAuthenticator;
let phoneKey: SoftAuthenticator;

beforeAll(async () => {
  server = await startTestServer();
  api = apiClient(server.httpUrl);
  owner = await signUp(api, EMAIL, "Keys BV");
  const rp = new URL(server.httpUrl);
  laptopKey = new SoftAuthenticator(rp.hostname, rp.origin);
  phoneKey = new SoftAuthenticator(rp.hostname, rp.origin);
});
afterAll(async () => {
  await server?.cleanup();
});

async function register(key: SoftAuthenticator, name: string, settings: { origin?: string } = {}): Promise<ApiResponse> {
  const started = await api("POST", "/v1/auth/webauthn/register/options", { token: owner.token, body: {} });
  expect(started.status).toBe(200);
  const options = started.body.options as { challenge: string; rp: { id: string } };
  return api("POST", "/v1/auth/webauthn/register", { token: owner.token, body: { name, challengeToken: started.body.challengeToken, response: key.register(options, settings) } });
}

async function signInOptions(email?: string): Promise<{ challengeToken: string; options: { challenge: string; allowCredentials?: { id: string }[] } }> {
  const started = await api("POST", "/v1/auth/webauthn/login/options", { body: email ? { email } : {} });
  expect(started.status).toBe(200);
  return started.body as never;
}

describe("security keys", () => {
  it("registers several named keys, lists, renames them, and refuses an answer for another origin", async () => {
    expect((await register(laptopKey, "YubiKey 5C")).status).toBe(201);
    expect((await register(phoneKey, "Phone passkey")).status).toBe(201);
    const phishing = new SoftAuthenticator(new URL(server.httpUrl).hostname, "https://parley.evil.example");
    const refused = await register(phishing, "phished", { origin: "https://parley.evil.example" });
    expect(refused.status).toBe(401);
    expect(refused.body.error?.code).toBe(ErrorCode.InvalidTwoFactorCode);
    expect((await register(laptopKey, "again")).status).toBe(409); // the same credential twice

    expect((await api("PATCH", `/v1/auth/webauthn/credentials/${laptopKey.id}`, { token: owner.token, body: { name: "Blue YubiKey" } })).status).toBe(204);
    const listed = await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token });
    expect((listed.body.items as { id: string; name: string }[]).map((k) => [k.id, k.name])).toEqual([
      [laptopKey.id, "Blue YubiKey"],
      [phoneKey.id, "Phone passkey"],
    ]);
    expect(JSON.stringify(listed.body)).not.toMatch(/publicKey|public_key/);
  });

  it("asks for the key after the password, and signs in with it as the second factor", async () => {
    const passwordOnly = await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD } });
    expect(passwordOnly.status).toBe(401);
    expect(passwordOnly.body.error?.code).toBe(ErrorCode.TwoFactorRequired);
    // The password was right: the answer names what can work (keys, and the codes the first key came with; no app).
    expect(passwordOnly.body.error?.secondFactors).toEqual(["security-key", "recovery-code"]);
    const { challengeToken, options } = await signInOptions(EMAIL);
    expect(options.allowCredentials?.map((c) => c.id).sort()).toEqual([laptopKey.id, phoneKey.id].sort());
    // A security key without user verification is fine as a second factor.
    const webauthn = { challengeToken, response: laptopKey.assert(options, { userVerified: false }) };
    const signedIn = await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD, webauthn } });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.accessToken).toEqual(expect.any(String));
    // The same assertion again (a replay: its counter is no longer ahead) is refused.
    expect((await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD, webauthn } })).status).toBe(401);
  });

  it("signs in without a password with a passkey that verifies the person, and refuses one that does not", async () => {
    const first = await signInOptions();
    const passkey = await api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: first.challengeToken, response: phoneKey.assert(first.options) } });
    expect(passkey.status).toBe(200);
    expect((passkey.body.user as { id: string }).id).toBe(owner.userId);

    const second = await signInOptions();
    const unverified = await api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: second.challengeToken, response: phoneKey.assert(second.options, { userVerified: false }) } });
    expect(unverified.status).toBe(401);

    // A cloned key (its counter behind the real one) and a forged challenge token are refused.
    const third = await signInOptions();
    phoneKey.counter = 0;
    expect((await api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: third.challengeToken, response: phoneKey.assert(third.options) } })).status).toBe(401);
    const fourth = await signInOptions();
    phoneKey.counter = 100;
    const forged = `${fourth.challengeToken.split(".")[0]}.${"A".repeat(43)}`;
    expect((await api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: forged, response: phoneKey.assert(fourth.options) } })).status).toBe(400);
    // A key nobody registered.
    const stranger = new SoftAuthenticator(new URL(server.httpUrl).hostname, new URL(server.httpUrl).origin);
    const fifth = await signInOptions();
    expect((await api("POST", "/v1/auth/webauthn/login", { body: { challengeToken: fifth.challengeToken, response: stranger.assert(fifth.options) } })).status).toBe(401);
  });

  it("removes a key (a security notice), and records every registration, use and removal in the audit chain", async () => {
    expect((await api("DELETE", `/v1/auth/webauthn/credentials/${phoneKey.id}`, { token: owner.token })).status).toBe(204);
    expect((await api("DELETE", `/v1/auth/webauthn/credentials/${phoneKey.id}`, { token: owner.token })).status).toBe(404);
    const listed = await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token });
    expect((listed.body.items as { id: string }[]).map((k) => k.id)).toEqual([laptopKey.id]);

    const chain = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000);
    const actions = chain.map((e) => e.action).filter((a) => a.startsWith("webauthn."));
    expect(actions).toEqual(["webauthn.registered", "webauthn.registered", "webauthn.renamed", "webauthn.used", "webauthn.used", "webauthn.removed"]);
    const verified = await api("GET", `/v1/organisations/${owner.orgId}/audit/verify`, { token: owner.token });
    expect(verified.body.ok).toBe(true);

    const notices = await api("GET", `/v1/organisations/${owner.orgId}/security-notices`, { token: owner.token });
    expect((notices.body.items as { data: { notice: string } }[]).map((n) => n.data.notice)).toContain("security-key.removed");
  });

  it("lets an organisation require a security key: a member without one can do nothing but register one", async () => {
    const orgPath = `/v1/organisations/${owner.orgId}`;
    const fresh = await api("POST", "/v1/auth/webauthn/login/options", { body: { email: EMAIL } });
    const signedIn = await api("POST", "/v1/auth/login", {
      body: { email: EMAIL, password: TEST_PASSWORD, webauthn: { challengeToken: fresh.body.challengeToken, response: laptopKey.assert(fresh.body.options as { challenge: string }) } },
    });
    expect(signedIn.status).toBe(200);
    owner = { ...owner, token: signedIn.body.accessToken as string };
    expect((await api("PATCH", orgPath, { token: owner.token, body: { requireSecurityKey: true } })).status).toBe(200);
    expect((await api("GET", orgPath, { token: owner.token })).body).toMatchObject({ requireSecurityKey: true });
    // Without a key (removed), only registering one is open.
    expect((await api("DELETE", `/v1/auth/webauthn/credentials/${laptopKey.id}`, { token: owner.token })).status).toBe(204);
    const blocked = await api("GET", orgPath, { token: owner.token });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error?.code).toBe(ErrorCode.TwoFactorEnrolmentRequired);
    const newKey = new SoftAuthenticator(new URL(server.httpUrl).hostname, new URL(server.httpUrl).origin);
    expect((await register(newKey, "Replacement key")).status).toBe(201);
    expect((await api("GET", orgPath, { token: owner.token })).status).toBe(200);
  });
});
