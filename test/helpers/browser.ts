// Real Chromium for the web app's end-to-end tests (playwright-core driving Debian's
// /usr/bin/chromium, headless, with background networking off: the machine has no network),
// plus the outbox reader the tests use to get invitation links and codes as a person would.

import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterEach } from "vitest";

/** Where Debian installs Chromium (`apt-get install chromium`; .ci/run does it). */
export const CHROMIUM_PATH = process.env.PARLEY_CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Screenshots of each step, kept as test artefacts (gitignored). */
export const ARTIFACTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test-artifacts/web-app");

/** True when Chromium can run here; without it the browser tests skip loudly, except under CI=true where they fail. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const message = `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\``;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`SKIPPING the web app's browser tests: ${message}`);
  return false;
}

/** Launches headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--disable-sync", "--no-first-run"],
  });
}

/** Saves a full-page screenshot named `<step>.png` in the artefacts folder. */
export async function screenshot(page: Page, step: string): Promise<void> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${step}.png`), fullPage: true });
}

/** Registers an afterEach that leaves a picture of the page a failed test stopped on (`failed-<prefix>-<test>.png`). */
export function screenshotFailures(currentPage: () => Page | undefined, prefix: string): void {
  afterEach(async (test) => {
    const page = currentPage();
    if (page && test.task.result?.state === "fail") await screenshot(page, `failed-${prefix}-${test.task.name.slice(0, 40).replace(/\W+/g, "-")}`);
  });
}

/** The text bodies of every mail in `<dataDir>/outbox`, oldest first (quoted-printable undone). */
export async function outboxMails(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, "outbox");
  const names = existsSync(dir) ? (await readdir(dir)).filter((name) => name.endsWith(".eml")).sort() : [];
  const mails: string[] = [];
  for (const name of names) {
    const raw = await readFile(path.join(dir, name), "utf8");
    mails.push(raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))));
  }
  return mails;
}

/** The first link to `/<kind>/<token>` mailed to `to`. */
async function mailedLinkFor(dataDir: string, to: string, kind: "invite" | "signup"): Promise<string | undefined> {
  const link = new RegExp(`(https?:\\/\\/[^\\s"<>]+\\/${kind}\\/[A-Za-z0-9_-]+)`);
  for (const mail of await outboxMails(dataDir)) {
    if (!mail.includes(to)) continue;
    const match = link.exec(mail);
    if (match) return match[1];
  }
  return undefined;
}

/** The first invitation link mailed to `to`. */
export function invitationLinkFor(dataDir: string, to: string): Promise<string | undefined> {
  return mailedLinkFor(dataDir, to, "invite");
}

/** The first sign-up confirmation link mailed to `to`. */
export function signUpLinkFor(dataDir: string, to: string): Promise<string | undefined> {
  return mailedLinkFor(dataDir, to, "signup");
}

/** The newest 6-digit sign-in code mailed to `to`. */
export async function deviceCodeFor(dataDir: string, to: string): Promise<string | undefined> {
  const codes = (await outboxMails(dataDir)).filter((mail) => mail.includes(to)).flatMap((mail) => [...mail.matchAll(/Your code is (\d{6})/g)].map((m) => m[1]));
  return codes.at(-1);
}

/** Waits until the (first) element is visible; playwright-core has no `expect`, so tests wait on locators. */
export async function visible(locator: Locator, timeout = 20_000): Promise<void> {
  await locator.first().waitFor({ state: "visible", timeout });
}

/** The element's text now, or "" while it is absent (for vitest's expect.poll). */
export async function textOf(locator: Locator): Promise<string> {
  return (await locator.count()) === 0 ? "" : ((await locator.first().textContent()) ?? "");
}

/** A field's value now (for expect.poll). */
export function fieldValue(locator: Locator): Promise<string> {
  return locator.inputValue();
}
