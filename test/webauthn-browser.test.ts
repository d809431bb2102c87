// Security keys end to end in real Chromium: its virtual authenticator (DevTools protocol
// WebAuthn.addVirtualAuthenticator through playwright-core) answers navigator.credentials on a
// page of the server's own origin (http://localhost counts as a secure context), and the server
// registers the key, then accepts it as a passwordless sign-in and as the second factor.

import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { chromiumAvailable, launchChromium } from "./helpers/browser.ts";
import { apiClient } from "./helpers/http-client.ts";
import { freePort, startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

const available = chromiumAvailable();
let server: TestServer;
let browser: Browser;
let page: Page;
let owner: SignedUp;
let api: ReturnType<typeof apiClient>;
const EMAIL = "browser@keys.example";

/** navigator.credentials.create/get in the page, with the JSON <-> ArrayBuffer conversions a browser library would do. */
async function inPage(kind: "create" | "get", options: unknown): Promise<unknown> {
  return page.evaluate(
    async ([k, o]) => {
      const bytes = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
      const text = (b: ArrayBuffer) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      const opts = o as Record<string, unknown> & { challenge: string; user?: { id: string }; excludeCredentials?: { id: string }[]; allowCredentials?: { id: string }[] };
      const publicKey = {
        ...opts,
        challenge: bytes(opts.challenge),
        ...(opts.user ? { user: { ...opts.user, id: bytes(opts.user.id) } } : {}),
        ...(opts.excludeCredentials ? { excludeCredentials: opts.excludeCredentials.map((c) => ({ ...c, id: bytes(c.id) })) } : {}),
        ...(opts.allowCredentials ? { allowCredentials: opts.allowCredentials.map((c) => ({ ...c, id: bytes(c.id) })) } : {}),
      };
      // The page's own types (this project compiles without the DOM library).
      type Credential = { id: string; rawId: ArrayBuffer; type: string; response: unknown };
      const credentials = (globalThis as unknown as { navigator: { credentials: { create(o: unknown): Promise<Credential>; get(o: unknown): Promise<Credential> } } }).navigator.credentials;
      if (k === "create") {
        const c = await credentials.create({ publicKey });
        const r = c.response as { clientDataJSON: ArrayBuffer; attestationObject: ArrayBuffer; getTransports(): string[] };
        return { id: c.id, rawId: text(c.rawId), type: c.type, response: { clientDataJSON: text(r.clientDataJSON), attestationObject: text(r.attestationObject), transports: r.getTransports() }, clientExtensionResults: {} };
      }
      const c = await credentials.get({ publicKey });
      const r = c.response as { clientDataJSON: ArrayBuffer; authenticatorData: ArrayBuffer; signature: ArrayBuffer; userHandle: ArrayBuffer | null };
      return {
        id: c.id,
        rawId: text(c.rawId),
        type: c.type,
        response: { clientDataJSON: text(r.clientDataJSON), authenticatorData: text(r.authenticatorData), signature: text(r.signature), ...(r.userHandle ? { userHandle: text(r.userHandle) } : {}) },
        clientExtensionResults: {},
      };
    },
    [kind, options] as const,
  );
}

beforeAll(async () => {
  if (!available) return;
  const port = await freePort();
  // WebAuthn needs a domain as relying party id: localhost, not 127.0.0.1.
  server = await startTestServer({ env: { PORT: String(port), PARLEY_PUBLIC_URL: `http://localhost:${port}` } });
  api = apiClient(`http://127.0.0.1:${port}`);
  owner = await signUp(api, EMAIL, "Browser Keys BV");
  browser = await launchChromium();
  page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  await page.goto(`http://localhost:${port}/healthz`);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.cleanup();
});

describe("security keys in Chromium", () => {
  it("registers the virtual authenticator's passkey, signs in with it without a password, and as the second factor", async (context) => {
    if (!available) return context.skip();
    const started = await api("POST", "/v1/auth/webauthn/register/options", { token: owner.token, body: {} });
    expect(started.status).toBe(200);
    const registered = await api("POST", "/v1/auth/webauthn/register", {
      token: owner.token,
      body: { name: "Chromium passkey", challengeToken: started.body.challengeToken, response: await inPage("create", started.body.options) },
    });
    expect(registered.status).toBe(201);

    const passwordless = await api("POST", "/v1/auth/webauthn/login/options", { body: {} });
    const signedIn = await api("POST", "/v1/auth/webauthn/login", {
      body: { challengeToken: passwordless.body.challengeToken, response: await inPage("get", passwordless.body.options) },
    });
    expect(signedIn.status).toBe(200);
    expect((signedIn.body.user as { id: string }).id).toBe(owner.userId);

    const withPassword = await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD } });
    expect(withPassword.body.error?.code).toBe(ErrorCode.TwoFactorRequired);
    const second = await api("POST", "/v1/auth/webauthn/login/options", { body: { email: EMAIL } });
    const both = await api("POST", "/v1/auth/login", {
      body: { email: EMAIL, password: TEST_PASSWORD, webauthn: { challengeToken: second.body.challengeToken, response: await inPage("get", second.body.options) } },
    });
    expect(both.status).toBe(200);

    const chain = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000);
    expect(chain.map((e) => e.action).filter((a) => a.startsWith("webauthn."))).toEqual(["webauthn.registered", "webauthn.used", "webauthn.used"]);
  }, 120_000);
});
