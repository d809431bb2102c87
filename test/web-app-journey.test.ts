// The web app end to end in real Chromium, against a real `parley serve` process on the embedded
// defaults: a helpdesk signs up (confirming with the mailed link) and starts a conversation inviting a supplier; the supplier opens
// the mailed link, clicks, lands in the conversation and writes; each sees the other live (messages,
// presence, notes); the server stops and the page says offline with unsaved changes; it restarts
// and the page ends in "Saved" with nothing lost. Then the link on a second device (mailed code).
// Elements are found by their accessible names: those names are part of the app's contract.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebApp, type WebAppBuild } from "../client-sdk/web-app/build.ts";
import { chromiumAvailable, deviceCodeFor, invitationLinkFor, launchChromium, screenshot, signUpLinkFor, textOf, fieldValue, visible } from "./helpers/browser.ts";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { freePort } from "./helpers/server.ts";
import { TEST_PASSWORD } from "./helpers/sign-up.ts";

const available = chromiumAvailable();
const TITLE = "Broken boiler at Dam 1";
const REF = "TICKET-4711";
const SUPPLIER = "sam@supplier.example";

let root: string;
let dataDir: string;
let port: number;
let built: WebAppBuild;
let server: ChildServer | null = null;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function start(): Promise<void> {
  server = await startChildServer(dataDir, { PORT: String(port), PARLEY_WEB_APP_DIR: built.outDir });
}

async function stop(): Promise<void> {
  const running = server;
  server = null;
  if (!running) return;
  running.process.kill("SIGTERM");
  await running.exited;
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(context);
  const page = await context.newPage();
  // Anything the page logs as an error (a CSP violation included) is a failure worth seeing.
  // (Refused connections are expected while the test has the server stopped.)
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().includes("ERR_CONNECTION_REFUSED")) console.warn(`[browser console] ${message.text()}`);
  });
  return page;
}

beforeAll(async () => {
  if (!available) return;
  root = await mkdtemp(path.join(tmpdir(), "parley-webapp-"));
  dataDir = path.join(root, "data");
  built = await buildWebApp(path.join(root, "web-app"));
  port = await freePort();
  await start();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  if (!available) return;
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await stop();
  await rm(root, { recursive: true, force: true });
});

describe.skipIf(!available)("the web app in Chromium", () => {
  const base = () => `http://127.0.0.1:${port}`;
  let helpdesk: Page;
  let supplier: Page;
  let link: string;
  let conversationUrl: string;

  it("lets a helpdesk sign up and start a conversation with an external reference, inviting a supplier", async () => {
    helpdesk = await newPage();
    await helpdesk.goto(`${base()}/`);
    await helpdesk.getByRole("link", { name: "Sign up" }).click();
    await helpdesk.getByLabel("Name").fill("Ann de Vries");
    await helpdesk.getByLabel("Organisation").fill("Helpdesk BV");
    await helpdesk.getByLabel("Email").fill("ann@helpdesk.example");
    await helpdesk.getByLabel("Password").fill(TEST_PASSWORD);
    await screenshot(helpdesk, "01-sign-up");
    await helpdesk.getByRole("button", { name: "Sign up" }).click();
    // Nothing exists until the mailbox confirms: the mailed link's page creates it and signs in.
    await visible(helpdesk.getByRole("heading", { name: "Check your mail" }));
    await expect.poll(() => signUpLinkFor(dataDir, "ann@helpdesk.example"), { timeout: 10_000 }).toMatch(/\/signup\//);
    await helpdesk.goto((await signUpLinkFor(dataDir, "ann@helpdesk.example")) as string);
    await screenshot(helpdesk, "01b-confirm-sign-up");
    await helpdesk.getByRole("button", { name: "Confirm and sign in" }).click();
    await visible(helpdesk.getByRole("heading", { name: "Conversations" }));
    await helpdesk.getByRole("button", { name: "New conversation" }).click();
    await helpdesk.getByLabel("Title").fill(TITLE);
    await helpdesk.getByLabel("External reference").fill(REF);
    await helpdesk.getByLabel("Invite by email").fill(SUPPLIER);
    await screenshot(helpdesk, "02-new-conversation");
    await helpdesk.getByRole("button", { name: "Create" }).click();
    await visible(helpdesk.getByRole("heading", { name: TITLE }));
    await visible(helpdesk.getByRole("status").filter({ hasText: "Saved" }));
    conversationUrl = helpdesk.url();
    expect(conversationUrl).toMatch(/#\/conversations\/cnv_/);
    await screenshot(helpdesk, "03-helpdesk-conversation");
  });

  it("lets the supplier open the mailed invitation, click, land in the conversation and write; the helpdesk sees it live", async () => {
    await expect.poll(() => invitationLinkFor(dataDir, SUPPLIER), { timeout: 10_000 }).toMatch(/\/invite\//);
    link = (await invitationLinkFor(dataDir, SUPPLIER)) as string;
    supplier = await newPage();
    await supplier.goto(link);
    await screenshot(supplier, "04-invitation-page");
    await supplier.getByRole("button", { name: "Open the conversation" }).click();
    await visible(supplier.getByRole("heading", { name: TITLE }));
    expect(supplier.url()).toBe(conversationUrl);
    await supplier.getByLabel("Message").fill("On my way, there by 3pm.");
    await supplier.getByRole("button", { name: "Send" }).click();
    await visible(supplier.getByRole("status").filter({ hasText: "Saved" }));
    await visible(supplier.getByRole("list", { name: "Thread" }).getByRole("listitem").filter({ hasText: "On my way, there by 3pm." }));
    // The helpdesk's page was not reloaded: the message arrives over the socket.
    await visible(helpdesk.getByRole("list", { name: "Thread" }).getByRole("listitem").filter({ hasText: "On my way, there by 3pm." }));
    await expect.poll(() => textOf(helpdesk.getByRole("listitem").filter({ hasText: "On my way" })), { timeout: 20_000 }).toContain(SUPPLIER);
    await screenshot(supplier, "05-supplier-wrote");
    await screenshot(helpdesk, "06-helpdesk-sees-it");
  });

  it("shows both people in presence and the notes typed by one to the other", async () => {
    for (const page of [helpdesk, supplier]) {
      const here = page.getByRole("region", { name: "Here now" });
      await expect.poll(() => textOf(here), { timeout: 20_000 }).toContain("Ann de Vries");
      await expect.poll(() => textOf(here), { timeout: 20_000 }).toContain(SUPPLIER);
    }
    await helpdesk.getByLabel("Notes").click();
    await helpdesk.getByLabel("Notes").pressSequentially("Boiler model X200, serial 8812.");
    await expect.poll(() => fieldValue(supplier.getByLabel("Notes")), { timeout: 20_000 }).toBe("Boiler model X200, serial 8812.");
    await supplier.getByLabel("Notes").press("End");
    await supplier.getByLabel("Notes").pressSequentially(" Part ordered.");
    await expect.poll(() => fieldValue(helpdesk.getByLabel("Notes")), { timeout: 20_000 }).toBe("Boiler model X200, serial 8812. Part ordered.");
    await visible(helpdesk.getByRole("status").filter({ hasText: "Saved" }));
    await screenshot(helpdesk, "07-presence-and-notes");
  });

  it("says offline with the unsaved changes while the server is down, and ends in Saved with nothing lost after it restarts", async () => {
    await stop();
    await expect.poll(() => textOf(supplier.getByRole("status")), { timeout: 20_000 }).toContain("Offline");
    await supplier.getByLabel("Message").fill("Written while the server was down.");
    await supplier.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => textOf(supplier.getByRole("status")), { timeout: 20_000 }).toContain("1 unsaved change");
    await screenshot(supplier, "08-offline-unsaved");
    await start();
    await expect.poll(() => textOf(supplier.getByRole("status")), { timeout: 30_000 }).toBe("Saved");
    await visible(helpdesk.getByRole("list", { name: "Thread" }).getByRole("listitem").filter({ hasText: "Written while the server was down." }), 30_000);
    await screenshot(supplier, "09-saved-after-restart");
    // Nothing lost: a fresh load (the session comes back from the refresh cookie) shows it all.
    await helpdesk.reload();
    const messages = helpdesk.getByRole("list", { name: "Thread" });
    await expect.poll(() => messages.getByRole("listitem").count(), { timeout: 20_000 }).toBe(2);
    await expect.poll(() => textOf(messages), { timeout: 20_000 }).toContain("On my way, there by 3pm.");
    await expect.poll(() => textOf(messages), { timeout: 20_000 }).toContain("Written while the server was down.");
    await expect.poll(() => fieldValue(helpdesk.getByLabel("Notes")), { timeout: 20_000 }).toBe("Boiler model X200, serial 8812. Part ordered.");
    await screenshot(helpdesk, "10-after-reload");
  });

  it("finds the conversation in the list by its external reference", async () => {
    await helpdesk.getByRole("link", { name: "Conversations" }).click();
    await helpdesk.getByLabel("Search by external reference").fill(REF);
    await helpdesk.getByRole("button", { name: "Search" }).click();
    const row = helpdesk.getByRole("row").filter({ hasText: TITLE });
    await expect.poll(() => textOf(row), { timeout: 20_000 }).toContain(REF);
    await expect.poll(() => textOf(row), { timeout: 20_000 }).toContain("Helpdesk BV");
    await expect.poll(() => textOf(row), { timeout: 20_000 }).toContain("open");
    await screenshot(helpdesk, "11-list-search");
  });

  it("lets the supplier open the same link on a second device with the mailed code", async () => {
    const second = await newPage();
    await second.goto(link);
    await second.getByRole("button", { name: "Open the conversation" }).click();
    await visible(second.getByLabel("Code"));
    await screenshot(second, "12-second-device-code");
    await expect.poll(() => deviceCodeFor(dataDir, SUPPLIER), { timeout: 10_000 }).toMatch(/^\d{6}$/);
    await second.getByLabel("Code").fill((await deviceCodeFor(dataDir, SUPPLIER)) as string);
    await second.getByRole("button", { name: "Open the conversation" }).click();
    await visible(second.getByRole("heading", { name: TITLE }));
    await expect.poll(() => textOf(second.getByRole("list", { name: "Thread" })), { timeout: 20_000 }).toContain("Written while the server was down.");
    await screenshot(second, "13-second-device-in");
  });

  it("keeps the session across a reload and ends it on sign out", async () => {
    await supplier.reload();
    await visible(supplier.getByRole("heading", { name: TITLE }));
    await supplier.getByRole("button", { name: "Sign out" }).click();
    await visible(supplier.getByRole("button", { name: "Sign in" }));
    await supplier.reload();
    await visible(supplier.getByRole("button", { name: "Sign in" }));
  });
});
