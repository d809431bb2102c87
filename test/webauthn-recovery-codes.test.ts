// Recovery codes for an account whose only second factor is a security key, at the API level with
// a software authenticator: the first key comes with ten codes, shown in that answer and never
// again; each works once; they survive the authenticator app being turned off while a key remains
// and go with the last second factor; replacing them needs a second factor, not just a session;
// two racing first registrations answer with one working set; every issue and removal is in the
// organisation's audit chain, which still verifies.

import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { SoftAuthenticator } from "./helpers/soft-authenticator.ts";

let server: TestServer;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  server = await startTestServer();
  api = apiClient(server.httpUrl);
});
afterAll(async () => {
  await server?.cleanup();
});

/** The format the authenticator app's codes have (server/auth/totp.ts). */
const RECOVERY_CODE = /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/;

function authenticator(): SoftAuthenticator {
  const rp = new URL(server.httpUrl);
  return new SoftAuthenticator(rp.hostname, rp.origin);
}

async function registerOptions(owner: SignedUp): Promise<{ challengeToken: string; options: { challenge: string; rp: { id: string } } }> {
  const started = await api("POST", "/v1/auth/webauthn/register/options", { token: owner.token, body: {} });
  expect(started.status).toBe(200);
  return started.body as never;
}

async function register(owner: SignedUp, key: SoftAuthenticator, name: string): Promise<ApiResponse> {
  const { challengeToken, options } = await registerOptions(owner);
  return api("POST", "/v1/auth/webauthn/register", { token: owner.token, body: { name, challengeToken, response: key.register(options) } });
}

async function assertion(email: string, key: SoftAuthenticator): Promise<{ challengeToken: string; response: unknown }> {
  const started = await api("POST", "/v1/auth/webauthn/login/options", { body: { email } });
  return { challengeToken: started.body.challengeToken as string, response: key.assert(started.body.options as { challenge: string }, { userVerified: false }) };
}

const login = (email: string, extra: Record<string, unknown> = {}) => api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD, ...extra } });

async function orgActions(owner: SignedUp): Promise<string[]> {
  return (await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000)).map((e) => e.action);
}

async function chainVerifies(owner: SignedUp): Promise<boolean> {
  return (await api("GET", `/v1/organisations/${owner.orgId}/audit/verify`, { token: owner.token })).body.ok === true;
}

describe("recovery codes of a key-only account", { timeout: 60_000 }, () => {
  it("come with the first key, once; each works once; replacing them needs a second factor", async () => {
    const email = "only-keys@recovery.example";
    let owner = await signUp(api, email, "Only Keys BV");
    const laptop = authenticator();
    const first = await register(owner, laptop, "YubiKey");
    expect(first.status).toBe(201);
    const codes = first.body.recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    for (const code of codes) expect(code).toMatch(RECOVERY_CODE);
    expect(new Set(codes).size).toBe(10);

    // Shown once: a second key's answer and the key list carry none.
    const second = await register(owner, authenticator(), "Phone passkey");
    expect(second.status).toBe(201);
    expect(second.body).not.toHaveProperty("recoveryCodes");
    const listed = JSON.stringify((await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token })).body);
    for (const code of codes) expect(listed).not.toContain(code);

    // The sign-in now offers them, and one works exactly once.
    expect((await login(email)).body.error?.secondFactors).toEqual(["security-key", "recovery-code"]);
    const used = await login(email, { recoveryCode: codes[0] });
    expect(used.status).toBe(200);
    owner = { ...owner, token: used.body.accessToken as string };
    const again = await login(email, { recoveryCode: codes[0] });
    expect(again.status).toBe(401);
    expect(again.body.error?.code).toBe(ErrorCode.InvalidTwoFactorCode);

    // Replacing them: a session alone (a stolen token) is refused, a wrong code too.
    const bare = await api("POST", "/v1/auth/recovery-codes", { token: owner.token, body: {} });
    expect(bare.status).toBe(401);
    expect(bare.body.error?.code).toBe(ErrorCode.InvalidTwoFactorCode);
    expect((await api("POST", "/v1/auth/recovery-codes", { token: owner.token, body: { recoveryCode: codes[0] } })).status).toBe(401);
    // With the key: ten new ones, the old ones dead.
    const replaced = await api("POST", "/v1/auth/recovery-codes", { token: owner.token, body: { webauthn: await assertion(email, laptop) } });
    expect(replaced.status).toBe(200);
    const fresh = replaced.body.recoveryCodes as string[];
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => codes.includes(c))).toEqual([]);
    expect((await login(email, { recoveryCode: codes[1] })).status).toBe(401);
    expect((await login(email, { recoveryCode: fresh[0] })).status).toBe(200);

    const actions = await orgActions(owner);
    expect(actions.filter((a) => a === "2fa.recovery-codes-issued")).toHaveLength(2); // the first key's, the replacement's
    expect(actions.filter((a) => a === "2fa.recovery-code-used")).toHaveLength(2);
    expect(await chainVerifies(owner)).toBe(true);
  });

  it("survive the authenticator app turned off while a key remains, and go with the last second factor", async () => {
    const email = "app-and-key@recovery.example";
    let owner = await signUp(api, email, "App And Key BV");
    const key = authenticator();
    const keyCodes = (await register(owner, key, "YubiKey")).body.recoveryCodes as string[];
    expect(keyCodes).toHaveLength(10);

    // The app on: its own ten codes replace the key's (shown in that answer, as before).
    const enrol = await api("POST", "/v1/auth/2fa/enrol", { token: owner.token });
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret as string) });
    const on = await api("POST", "/v1/auth/2fa/verify", { token: owner.token, body: { code: totp.generate() } });
    expect(on.status).toBe(200);
    const appCodes = on.body.recoveryCodes as string[];
    // The app off (with one of them): the rest still work, the key being left.
    expect((await api("POST", "/v1/auth/2fa/disable", { token: owner.token, body: { recoveryCode: appCodes[0] } })).status).toBe(204);
    expect((await login(email)).body.error?.secondFactors).toEqual(["security-key", "recovery-code"]);
    const signedIn = await login(email, { recoveryCode: appCodes[1] });
    expect(signedIn.status).toBe(200);
    owner = { ...owner, token: signedIn.body.accessToken as string };

    // The last key removed: the codes go with it, and nothing asks for a second factor.
    const keys = (await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token })).body.items as { id: string }[];
    expect((await api("DELETE", `/v1/auth/webauthn/credentials/${keys[0].id}`, { token: owner.token })).status).toBe(204);
    const passwordOnly = await login(email, { recoveryCode: appCodes[2] });
    expect(passwordOnly.status).toBe(200); // no second factor asked for: the code is ignored, not spent
    // A new first key proves none were left: it comes with fresh codes, and the old ones are dead.
    const replacement = authenticator();
    const renewed = await register(owner, replacement, "Replacement");
    expect(renewed.body.recoveryCodes).toHaveLength(10);
    expect((await login(email, { recoveryCode: appCodes[2] })).status).toBe(401);
    expect((await login(email, { recoveryCode: (renewed.body.recoveryCodes as string[])[0] })).status).toBe(200);
    // Without any factor there is nothing for new codes to back up.
    expect((await api("DELETE", `/v1/auth/webauthn/credentials/${replacement.id}`, { token: owner.token })).status).toBe(204);
    const orphan = await api("POST", "/v1/auth/recovery-codes", { token: owner.token, body: {} });
    expect(orphan.status).toBe(409);

    const actions = await orgActions(owner);
    expect(actions.filter((a) => a === "2fa.recovery-codes-issued")).toHaveLength(2);
    expect(actions.filter((a) => a === "2fa.recovery-codes-removed")).toHaveLength(2);
    expect(await chainVerifies(owner)).toBe(true);
  });

  it("go when the last two keys are removed at once", async () => {
    const email = "racing-removals@recovery.example";
    const owner = await signUp(api, email, "Racing Removals BV");
    const [a, b] = [authenticator(), authenticator()];
    const codes = (await register(owner, a, "one")).body.recoveryCodes as string[];
    expect((await register(owner, b, "two")).status).toBe(201);
    const removals = await Promise.all([a, b].map((key) => api("DELETE", `/v1/auth/webauthn/credentials/${key.id}`, { token: owner.token })));
    expect(removals.map((r) => r.status)).toEqual([204, 204]);
    // Neither removal saw itself as the last, or one did (the requests may also run one after the
    // other: the outcome is what is checked): either way no code outlives the keys,
    // which a new first key shows (it comes with fresh codes; the old ones are dead).
    const renewed = await register(owner, authenticator(), "three");
    expect(renewed.body.recoveryCodes).toHaveLength(10);
    expect((await login(email, { recoveryCode: codes[0] })).status).toBe(401);
  });

  it("of two first keys registered at once, one answer carries codes, and they are the ones that work", async () => {
    const email = "racing-keys@recovery.example";
    const owner = await signUp(api, email, "Racing Keys BV");
    const [a, b] = [authenticator(), authenticator()];
    const [optionsA, optionsB] = await Promise.all([registerOptions(owner), registerOptions(owner)]);
    const answers = await Promise.all(
      [
        [a, optionsA],
        [b, optionsB],
      ].map(([key, started]) => {
        const { challengeToken, options } = started as Awaited<ReturnType<typeof registerOptions>>;
        return api("POST", "/v1/auth/webauthn/register", { token: owner.token, body: { name: "racer", challengeToken, response: (key as SoftAuthenticator).register(options) } });
      }),
    );
    expect(answers.map((r) => r.status)).toEqual([201, 201]);
    const withCodes = answers.filter((r) => r.body.recoveryCodes !== undefined);
    expect(withCodes).toHaveLength(1);
    // The codes shown work (the other registration did not replace them behind its back).
    for (const answer of withCodes) expect((await login(email, { recoveryCode: (answer.body.recoveryCodes as string[])[9] })).status).toBe(200);
    expect((await orgActions(owner)).filter((x) => x === "2fa.recovery-codes-issued")).toHaveLength(withCodes.length);
  });
});
