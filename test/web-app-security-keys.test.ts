// Security keys in the web app, end to end in real Chromium: its virtual authenticator (DevTools
// protocol WebAuthn.addVirtualAuthenticator) answers the app's navigator.credentials calls on the
// server's own origin (http://localhost is a secure context). A person adds a named key in the
// settings, signs out, signs in with password + key, then with the passkey alone, removes the key,
// and the removed key no longer signs anyone in. Every step is checked against the audit chain.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebApp } from "../client-sdk/web-app/build.ts";
import { chromiumAvailable, launchChromium, screenshot, screenshotFailures, textOf, visible } from "./helpers/browser.ts";
import { apiClient } from "./helpers/http-client.ts";
import { freePort, startTestServer, type TestServer } from "./helpers/server.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

const available = chromiumAvailable();
const EMAIL = "keys@webapp.example";
let root: string;
let server: TestServer;
let base: string;
let api: ReturnType<typeof apiClient>;
let owner: SignedUp;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let cdp: CDPSession;
let authenticatorId: string;
const cspViolations: string[] = [];

beforeAll(async () => {
  if (!available) return;
  root = await mkdtemp(path.join(tmpdir(), "parley-webapp-keys-"));
  const built = await buildWebApp(path.join(root, "web-app"));
  const port = await freePort();
  // WebAuthn needs a domain as relying party id: localhost, not 127.0.0.1.
  base = `http://localhost:${port}`;
  server = await startTestServer({ env: { PORT: String(port), PARLEY_PUBLIC_URL: base, PARLEY_WEB_APP_DIR: built.outDir } });
  api = apiClient(`http://127.0.0.1:${port}`);
  owner = await signUp(api, EMAIL, "Keyed Helpdesk BV");
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) cspViolations.push(message.text());
  });
  cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "usb", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  }));
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await context?.close();
  await browser?.close();
  await server?.cleanup();
  await rm(root, { recursive: true, force: true });
});

screenshotFailures(() => (available ? page : undefined), "keys");

async function webauthnActions(): Promise<string[]> {
  const chain = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000);
  return chain.map((e) => e.action).filter((a) => a.startsWith("webauthn."));
}

async function signInWithPassword() {
  await visible(page.getByRole("button", { name: "Sign in", exact: true }));
  await page.getByLabel("Email", { exact: true }).fill(EMAIL);
  await page.getByLabel("Password").fill(TEST_PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await visible(page.getByRole("button", { name: "Sign in", exact: true }));
}

describe.skipIf(!available)("security keys in the web app, in Chromium", () => {
  it("adds a named security key from the settings, and lists it", async () => {
    await page.goto(`${base}/`);
    await signInWithPassword();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    await page.getByRole("link", { name: "Settings" }).click();
    const panel = page.getByRole("region", { name: "Security keys" });
    await visible(panel.getByText("No security key yet."));
    await panel.getByLabel("Name for the security key").fill("Desk key");
    await panel.getByRole("button", { name: "Add a security key" }).click();
    await visible(panel.getByRole("status").getByText("Added the security key “Desk key”"));
    await visible(panel.getByText(/Desk key.*never used/));
    await screenshot(page, "security-keys-settings");
    expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(1);
    const listed = await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token });
    expect((listed.body.items as { name: string }[]).map((k) => k.name)).toEqual(["Desk key"]);
    expect(await webauthnActions()).toEqual(["webauthn.registered"]);
  }, 120_000);

  it("lets the owner require a security key of every member once they have one", async () => {
    const box = page.getByLabel("Require a security key of every member");
    await box.check();
    await expect.poll(async () => (await api("GET", `/v1/organisations/${owner.orgId}`, { token: owner.token })).body.requireSecurityKey).toBe(true);
    await box.uncheck();
    await expect.poll(async () => (await api("GET", `/v1/organisations/${owner.orgId}`, { token: owner.token })).body.requireSecurityKey).toBe(false);
  }, 60_000);

  it("asks for the key after the password, and signs in with it", async () => {
    await signOut();
    await signInWithPassword();
    await visible(page.getByRole("button", { name: "Use your security key" }));
    await screenshot(page, "security-key-second-factor");
    await page.getByRole("button", { name: "Use your security key" }).click();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.used"]);
    const chain = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000);
    expect(chain.filter((e) => e.action === "login.succeeded").at(-1)?.details).toMatchObject({ secondFactor: true });
  }, 120_000);

  it("signs in with the passkey alone, without a password", async () => {
    await signOut();
    await page.getByRole("button", { name: "Use a passkey instead of a password" }).click();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.used", "webauthn.used"]);
  }, 120_000);

  it("removes the key: password alone signs in again, and the removed key signs nobody in", async () => {
    await page.getByRole("link", { name: "Settings" }).click();
    const panel = page.getByRole("region", { name: "Security keys" });
    await panel.getByRole("button", { name: "Remove security key Desk key" }).click();
    await visible(panel.getByRole("status").getByText("Removed the security key “Desk key”."));
    await visible(panel.getByText("No security key yet."));
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.used", "webauthn.used", "webauthn.removed"]);

    await signOut();
    // The authenticator still holds the credential; the server no longer knows it.
    expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(1);
    await page.getByRole("button", { name: "Use a passkey instead of a password" }).click();
    await expect.poll(() => textOf(page.getByRole("alert"))).toContain("this key is not registered here");
    expect(await page.getByRole("heading", { name: "Conversations" }).count()).toBe(0);

    await signInWithPassword();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await page.getByRole("button", { name: "Use your security key" }).count()).toBe(0);
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.used", "webauthn.used", "webauthn.removed"]);
  }, 120_000);

  it("ran every screen under the app's CSP without a violation", () => {
    expect(cspViolations).toEqual([]);
  });
});
