// The server serving the web app: `/` and its assets from the build folder with the app's CSP
// (no inline script, connect-src 'self') while every API response keeps its stricter headers;
// nothing outside the build folder is reachable; the browser session (refresh cookie + CSRF
// token) refuses requests that do not come from the app's own page; the invitation button's
// browser POST leads into the app.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebApp, type WebAppBuild } from "../client-sdk/web-app/build.ts";
import { ErrorCode } from "../protocol/index.ts";
import { WEB_APP_CSP } from "../server/http/web-app-files.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { type ApiResponse, apiClient } from "./helpers/http-client.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

const API_CSP = "default-src 'none'; frame-ancestors 'none'";
const SEED = Number(process.env.FC_SEED ?? (process.env.CI === "true" ? CI_SEED : Date.now() % 1_000_000));
const RUNS = Number(process.env.FC_RUNS ?? 100);

let root: string;
let built: WebAppBuild;
let server: TestServer;
let base: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "parley-webapp-serve-"));
  built = await buildWebApp(path.join(root, "web-app"));
  server = await startTestServer({ env: { PARLEY_WEB_APP_DIR: built.outDir } });
  base = server.httpUrl;
}, 120_000);

afterAll(async () => {
  await server?.cleanup();
  await rm(root, { recursive: true, force: true });
});

/** The Set-Cookie lines of a response, by cookie name. */
function cookiesOf(response: { headers: Headers }): Map<string, string> {
  const lines = response.headers.getSetCookie();
  return new Map(lines.map((line) => [line.split("=")[0], line]));
}

function cookieValue(line: string | undefined): string {
  return line?.split(";")[0].split("=").slice(1).join("=") ?? "";
}

async function signUpInBrowser(email: string): Promise<{ access: string; refresh: string; csrf: string; response: ApiResponse; body: Record<string, unknown> }> {
  // Confirmed as the web app's session asks for it: the refresh token as a cookie.
  const response = await confirmedSignUp(apiClient(base), { email, name: "Ann", organisation: "Helpdesk BV", refreshCookie: true });
  const body = response.body;
  const cookies = cookiesOf(response);
  return { access: body.accessToken as string, refresh: cookieValue(cookies.get("parley_refresh")), csrf: cookieValue(cookies.get("parley_csrf")), response, body };
}

function refreshWithCookie(session: { refresh: string; csrf: string }, headers: Record<string, string> = { "x-parley-csrf": session.csrf }) {
  return fetch(`${base}/v1/auth/refresh`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie: `parley_refresh=${session.refresh}; parley_csrf=${session.csrf}`, ...headers },
    body: "{}",
  });
}

describe("serving the web app", () => {
  it("serves the page at / with the app's CSP: scripts only from this origin, no inline script, connect-src 'self'", async () => {
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toBe(WEB_APP_CSP);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    const html = await response.text();
    // Every script is an external file: none inline, no inline event handlers.
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\/assets\/[^"]+\.js"/);
    expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain(`/${built.script}`);
  });

  it("serves the hashed assets with their content types, cached for good", async () => {
    const script = await fetch(`${base}/${built.script}`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toContain("immutable");
    expect((await script.arrayBuffer()).byteLength).toBe(built.scriptBytes);
    const style = await fetch(`${base}/${built.stylesheet}`);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("keeps the app's JavaScript under 150 KB gzipped", () => {
    expect(built.scriptGzipBytes).toBeLessThan(150 * 1024);
  });

  it("leaves the API's stricter headers as they were", async () => {
    for (const [pathName, status] of [
      ["/healthz", 200],
      ["/v1/me", 401],
      ["/openapi.json", 200],
      ["/no/such/thing", 404],
    ] as const) {
      const response = await fetch(`${base}${pathName}`);
      expect(response.status, pathName).toBe(status);
      expect(response.headers.get("content-security-policy"), pathName).toBe(API_CSP);
      expect(response.headers.get("cache-control"), pathName).toBe("no-store");
      expect(response.headers.get("content-type"), pathName).toContain("application/json");
    }
  });

  it("answers 404 for every asset name that is not a built file: traversal in any encoding, dot files, odd bytes", async () => {
    for (const name of ["..%2f..%2fpackage.json", "%2e%2e%2f%2e%2e%2fpackage.json", "..%252fpackage.json", ".env", "app.js%00.png", "index.html", "..%5c..%5cpackage.json"]) {
      const response = await fetch(`${base}/assets/${name}`);
      expect(response.status, name).toBe(404);
      expect(await response.text(), name).toBe("not found");
    }
    const response = await fetch(`${base}/assets/../../package.json`);
    expect(response.status).not.toBe(200);
  });

  it("never serves anything but the built files, whatever the asset name (property)", async () => {
    const real = new Set([built.script, built.stylesheet].map((file) => file.slice("assets/".length)));
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 40 }), async (raw) => {
        const name = encodeURIComponent(raw).replace(/%2E/gi, ".");
        const response = await fetch(`${base}/assets/${name}`);
        await response.arrayBuffer();
        if (response.status === 200) expect(real.has(name)).toBe(true);
        else expect([400, 404]).toContain(response.status);
      }),
      { seed: SEED, numRuns: RUNS },
    ).catch((error: unknown) => {
      throw new Error(`seed ${SEED}: ${String(error)}`);
    });
  });

  it("says how to build the app when the build is missing (and the API still works)", async () => {
    const bare = await startTestServer({ env: { PARLEY_WEB_APP_DIR: path.join(root, "not-built") } });
    try {
      const response = await fetch(`${bare.httpUrl}/`);
      expect(response.status).toBe(503);
      expect(await response.text()).toContain("npm run build:web");
      expect((await fetch(`${bare.httpUrl}/healthz`)).status).toBe(200);
    } finally {
      await bare.cleanup();
    }
  });
});

describe("the browser session: refresh cookie and CSRF token", () => {
  it("keeps the refresh token out of the page: HttpOnly, SameSite=Strict, only sent to /v1/auth, not in the body", async () => {
    const { response, body, refresh, csrf } = await signUpInBrowser("cookie@helpdesk.example");
    expect(body.refreshToken).toBeUndefined();
    const cookies = cookiesOf(response);
    expect(cookies.get("parley_refresh")).toMatch(/; Path=\/v1\/auth; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    // Plain http here: no Secure flag (see the https test below).
    expect(cookies.get("parley_refresh")).not.toContain("Secure");
    expect(cookies.get("parley_csrf")).toMatch(/; Path=\/; Max-Age=\d+; SameSite=Strict$/);
    expect(cookies.get("parley_csrf")).not.toContain("HttpOnly");
    expect(refresh.length).toBeGreaterThan(20);
    expect(csrf.length).toBeGreaterThan(20);
  });

  it("refuses a cookie refresh without the CSRF header, with a wrong one, or from another site, and changes nothing", async () => {
    const session = await signUpInBrowser("csrf@helpdesk.example");
    const attempts: Record<string, string>[] = [
      {},
      { "x-parley-csrf": "" },
      { "x-parley-csrf": `${session.csrf}x` },
      { "x-parley-csrf": session.csrf.slice(1) },
      { "x-parley-csrf": session.csrf, origin: "https://evil.example" },
      { "x-parley-csrf": session.csrf, origin: "null" },
      { "x-parley-csrf": session.csrf, origin: `http://127.0.0.1:${server.port}.evil.example` },
    ];
    for (const headers of attempts) {
      const response = await refreshWithCookie(session, headers);
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect(((await response.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.Forbidden);
      expect(response.headers.getSetCookie()).toEqual([]);
    }
    // The refresh token was not used up by any of them.
    const ok = await refreshWithCookie(session, { "x-parley-csrf": session.csrf, origin: base });
    expect(ok.status).toBe(200);
  });

  it("renews through the cookie from the app's own page: a new access token and a rotated cookie; the spent cookie ends the session", async () => {
    const session = await signUpInBrowser("rotate@helpdesk.example");
    const renewed = await refreshWithCookie(session);
    expect(renewed.status).toBe(200);
    const body = (await renewed.json()) as { accessToken: string; refreshToken?: string };
    expect(body.refreshToken).toBeUndefined();
    const me = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${body.accessToken}` } });
    expect(me.status).toBe(200);
    const next = cookiesOf(renewed);
    const rotated = { refresh: cookieValue(next.get("parley_refresh")), csrf: cookieValue(next.get("parley_csrf")) };
    expect(rotated.refresh).not.toBe(session.refresh);
    const again = await refreshWithCookie(rotated);
    expect(again.status).toBe(200);
    const latest = { refresh: cookieValue(cookiesOf(again).get("parley_refresh")), csrf: cookieValue(cookiesOf(again).get("parley_csrf")) };
    // Presenting the spent cookie again once its successor was used (a stolen copy; the reuse
    // grace covers only a retry whose answer was lost) revokes the whole session.
    expect((await refreshWithCookie(session)).status).toBe(401);
    expect((await refreshWithCookie(latest)).status).toBe(401);
  });

  it("clears the cookies on sign-out", async () => {
    const session = await signUpInBrowser("out@helpdesk.example");
    const response = await fetch(`${base}/v1/auth/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${session.access}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(204);
    const cookies = cookiesOf(response);
    expect(cookies.get("parley_refresh")).toContain("Max-Age=0");
    expect(cookies.get("parley_csrf")).toContain("Max-Age=0");
    expect((await refreshWithCookie(session)).status).toBe(401);
  });

  it("marks the cookies Secure when the public URL is https", async () => {
    const secure = await startTestServer({ env: { PARLEY_WEB_APP_DIR: built.outDir, PARLEY_PUBLIC_URL: "https://parley.example" } });
    try {
      const response = await confirmedSignUp(apiClient(secure.httpUrl), { email: "tls@helpdesk.example", name: "Ann", organisation: "Helpdesk BV", refreshCookie: true });
      const cookies = cookiesOf(response);
      expect(cookies.get("parley_refresh")).toMatch(/HttpOnly; SameSite=Strict; Secure$/);
      expect(cookies.get("parley_csrf")).toMatch(/SameSite=Strict; Secure$/);
    } finally {
      await secure.cleanup();
    }
  });
});

describe("the invitation button in a browser", () => {
  it("redirects into the app's conversation view with the session cookies; a second device gets the code page; API clients still get JSON", async () => {
    const owner = await signUpInBrowser("inviter@helpdesk.example");
    const created = await fetch(`${base}/v1/conversations`, {
      method: "POST",
      headers: { authorization: `Bearer ${owner.access}`, "content-type": "application/json" },
      body: JSON.stringify({ title: "Leak", externalRef: "T-1", invitations: [{ email: "sam@supplier.example" }] }),
    });
    const conversation = (await created.json()) as { id: string };
    const { readdir, readFile } = await import("node:fs/promises");
    const outbox = path.join(server.dataDir, "outbox");
    let link = "";
    await expect
      .poll(async () => {
        for (const name of await readdir(outbox).catch(() => [] as string[])) {
          const text = (await readFile(path.join(outbox, name), "utf8")).replace(/=\r?\n/g, "");
          const match = /\/invite\/[A-Za-z0-9_-]+/.exec(text);
          if (text.includes("sam@supplier.example") && match) link = match[0];
        }
        return link;
      })
      .toMatch(/^\/invite\//);
    // The invitation page: no script at all, its one style allowed by hash, forms post only here.
    const landing = await fetch(`${base}${link}`);
    const landingCsp = landing.headers.get("content-security-policy") ?? "";
    expect(landingCsp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'$/);
    expect(landing.headers.getSetCookie()).toEqual([]);
    const landingHtml = await landing.text();
    expect(landingHtml).not.toMatch(/<script/i);
    expect(landingHtml).toContain("Open the conversation");
    const form = { "content-type": "application/x-www-form-urlencoded", accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
    const first = await fetch(`${base}${link}`, { method: "POST", headers: form, body: "", redirect: "manual" });
    expect(first.status).toBe(303);
    expect(first.headers.get("location")).toBe(`/#/conversations/${conversation.id}`);
    const cookies = cookiesOf(first);
    expect(cookies.get("parley_refresh")).toContain("HttpOnly; SameSite=Strict");
    expect(cookies.get("parley_device")).toContain("Path=/invite");
    expect(await first.text()).not.toContain("accessToken");

    const second = await fetch(`${base}${link}`, { method: "POST", headers: form, body: "", redirect: "manual" });
    expect(second.status).toBe(401);
    expect(second.headers.get("content-type")).toContain("text/html");
    const page = await second.text();
    expect(page).toContain('<label for="code">Code</label>');
    expect(page).toContain("Open the conversation");
    expect(second.headers.getSetCookie()).toEqual([]);

    const wrong = await fetch(`${base}${link}`, { method: "POST", headers: form, body: "code=000000", redirect: "manual" });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("wrong");

    const api = await fetch(`${base}${link}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(api.status).toBe(401);
    expect(((await api.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.DeviceCodeRequired);
  });
});
