// Security keys in the web app, end to end in real Chromium: its virtual authenticator (DevTools
// protocol WebAuthn.addVirtualAuthenticator) answers the app's navigator.credentials calls on the
// server's own origin (http://localhost is a secure context). A person adds a named key in the
// settings (the first key shows its ten recovery codes, once) and renames it, signs out, signs in
// with password + key (a key-only account is asked for no code; "use a recovery code" reveals the
// field), then with one of the codes the settings showed (which then fails a second time), asks
// for new codes with the key, signs in with the passkey alone, removes the key (its codes go with
// it), and the removed key no longer signs anyone in. Every step is checked against the audit chain.

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
/** The recovery codes the settings showed with the first key. */
let issuedCodes: string[] = [];
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

async function orgEntries(action: string) {
  return (await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000)).filter((e) => e.action === action);
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
    // The first key came with ten recovery codes, shown here in the "save these" box.
    const codesBox = panel.getByRole("region", { name: "Recovery codes" });
    await visible(codesBox.getByText("They are shown only now."));
    issuedCodes = await codesBox.locator("code").allTextContents();
    expect(issuedCodes).toHaveLength(10);
    for (const code of issuedCodes) expect(code).toMatch(/^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/);
    await screenshot(page, "security-keys-settings");
    // Shown once: back on the settings later, no codes.
    await page.getByRole("link", { name: "Conversations" }).click();
    await page.getByRole("link", { name: "Settings" }).click();
    await visible(panel.getByText(/Desk key.*never used/));
    expect(await page.getByRole("region", { name: "Recovery codes" }).count()).toBe(0);
    expect(await page.content()).not.toContain(issuedCodes[0]);
    expect(await orgEntries("2fa.recovery-codes-issued")).toHaveLength(1);
    expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(1);
    const listed = await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token });
    expect((listed.body.items as { name: string }[]).map((k) => k.name)).toEqual(["Desk key"]);
    expect(await webauthnActions()).toEqual(["webauthn.registered"]);
  }, 120_000);

  it("renames the key from the settings: the list, the API and the audit chain show the new name", async () => {
    const panel = page.getByRole("region", { name: "Security keys" });
    await panel.getByRole("button", { name: "Rename security key Desk key" }).click();
    const field = panel.getByLabel("New name for Desk key");
    expect(await field.inputValue()).toBe("Desk key");
    await field.fill("Blue YubiKey");
    await panel.getByRole("button", { name: "Save name" }).click();
    await visible(panel.getByRole("status").getByText("Renamed the security key “Desk key” to “Blue YubiKey”."));
    await visible(panel.getByText(/Blue YubiKey.*never used/));
    expect(await panel.getByRole("listitem").filter({ hasText: "Desk key" }).count()).toBe(0);
    const listed = await api("GET", "/v1/auth/webauthn/credentials", { token: owner.token });
    const [key] = listed.body.items as { id: string; name: string }[];
    expect(key.name).toBe("Blue YubiKey");
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.renamed"]);
    const [renamed] = await orgEntries("webauthn.renamed");
    expect(renamed).toMatchObject({ actor: `user:${owner.userId}`, target: key.id, details: { name: "Blue YubiKey" } });
  }, 120_000);

  it("lets the owner require a security key of every member once they have one", async () => {
    const box = page.getByLabel("Require a security key of every member");
    await box.check();
    await expect.poll(async () => (await api("GET", `/v1/organisations/${owner.orgId}`, { token: owner.token })).body.requireSecurityKey).toBe(true);
    await box.uncheck();
    await expect.poll(async () => (await api("GET", `/v1/organisations/${owner.orgId}`, { token: owner.token })).body.requireSecurityKey).toBe(false);
  }, 60_000);

  it("asks a key-only account for its key after the password, with no code field, and signs in with it", async () => {
    await signOut();
    await signInWithPassword();
    await visible(page.getByRole("button", { name: "Use your security key" }));
    await screenshot(page, "security-key-second-factor");
    // No authenticator app: no field for a code that cannot work, and no "Sign in" that would only
    // ask again; the recovery codes behind their link.
    expect(await page.getByLabel("Authentication code").count()).toBe(0);
    expect(await page.getByLabel("Recovery code").count()).toBe(0);
    expect(await page.getByRole("button", { name: "Use a recovery code" }).count()).toBe(1);
    expect(await page.getByRole("button", { name: "Sign in", exact: true }).count()).toBe(0);
    await page.getByRole("button", { name: "Use your security key" }).click();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.renamed", "webauthn.used"]);
    const chain = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 1000);
    expect(chain.filter((e) => e.action === "login.succeeded").at(-1)?.details).toMatchObject({ secondFactor: true });
  }, 120_000);

  async function signInWithRecoveryCode(code: string) {
    await signInWithPassword();
    await visible(page.getByRole("button", { name: "Use your security key" }));
    await page.getByRole("button", { name: "Use a recovery code" }).click();
    await page.getByLabel("Recovery code").fill(code);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
  }

  it("signs a key-only account in with a recovery code the settings showed, once only", async () => {
    await signOut();
    await signInWithRecoveryCode(issuedCodes[0]);
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await orgEntries("2fa.recovery-code-used")).toHaveLength(1);
    expect((await orgEntries("login.succeeded")).at(-1)?.details).toMatchObject({ secondFactor: true });
    // The same code a second time: refused, nobody signed in.
    await signOut();
    await signInWithRecoveryCode(issuedCodes[0]);
    await expect.poll(() => textOf(page.getByRole("alert"))).toContain("already used");
    expect(await page.getByRole("heading", { name: "Conversations" }).count()).toBe(0);
    expect(await orgEntries("2fa.recovery-code-used")).toHaveLength(1);
    // Another of them works.
    await page.goto(`${base}/`);
    await signInWithRecoveryCode(issuedCodes[1]);
    await visible(page.getByRole("heading", { name: "Conversations" }));
    await screenshot(page, "security-key-recovery-code");
    expect(await orgEntries("2fa.recovery-code-used")).toHaveLength(2);
  }, 120_000);

  it("replaces the recovery codes from the settings, confirmed with the key: the old ones stop working", async () => {
    await page.getByRole("link", { name: "Settings" }).click();
    const panel = page.getByRole("region", { name: "Security keys" });
    await panel.getByRole("button", { name: "New recovery codes" }).click();
    await visible(panel.getByRole("status").getByText("New recovery codes: the old ones no longer work."));
    const fresh = await panel.getByRole("region", { name: "Recovery codes" }).locator("code").allTextContents();
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => issuedCodes.includes(c))).toEqual([]);
    expect(await orgEntries("2fa.recovery-codes-issued")).toHaveLength(2);
    const login = (recoveryCode: string) => api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD, recoveryCode } });
    expect((await login(issuedCodes[2])).status).toBe(401);
    expect((await login(fresh[0])).status).toBe(200);
    issuedCodes = fresh.slice(1);
  }, 120_000);

  it("signs in with the passkey alone, without a password", async () => {
    await signOut();
    await page.getByRole("button", { name: "Use a passkey instead of a password" }).click();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await webauthnActions()).toEqual(["webauthn.registered", "webauthn.renamed", "webauthn.used", "webauthn.used", "webauthn.used"]);
  }, 120_000);

  it("removes the key: password alone signs in again, and the removed key signs nobody in", async () => {
    await page.getByRole("link", { name: "Settings" }).click();
    const panel = page.getByRole("region", { name: "Security keys" });
    await panel.getByRole("button", { name: "Remove security key Blue YubiKey" }).click();
    await visible(panel.getByRole("status").getByText("Removed the security key “Blue YubiKey”."));
    await visible(panel.getByText("No security key yet."));
    const actions = ["webauthn.registered", "webauthn.renamed", "webauthn.used", "webauthn.used", "webauthn.used", "webauthn.removed"];
    expect(await webauthnActions()).toEqual(actions);
    // It was the last second factor: its recovery codes went with it.
    expect(await orgEntries("2fa.recovery-codes-removed")).toHaveLength(1);

    await signOut();
    // The authenticator still holds the credential; the server no longer knows it.
    expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(1);
    await page.getByRole("button", { name: "Use a passkey instead of a password" }).click();
    await expect.poll(() => textOf(page.getByRole("alert"))).toContain("this key is not registered here");
    expect(await page.getByRole("heading", { name: "Conversations" }).count()).toBe(0);

    await signInWithPassword();
    await visible(page.getByRole("heading", { name: "Conversations" }));
    expect(await page.getByRole("button", { name: "Use your security key" }).count()).toBe(0);
    expect(await webauthnActions()).toEqual(actions);
    // A code that was left is no factor any more: a key registered now comes with new ones, not with these.
    const stillKnown = await api("POST", "/v1/auth/login", { body: { email: EMAIL, password: TEST_PASSWORD, recoveryCode: issuedCodes[0] } });
    expect(stillKnown.status).toBe(200); // no second factor asked for, the code ignored
    expect(await orgEntries("2fa.recovery-code-used")).toHaveLength(3);
  }, 120_000);

  it("ran every screen under the app's CSP without a violation", () => {
    expect(cspViolations).toEqual([]);
  });
});
