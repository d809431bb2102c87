// Serves Parley's own web app (built by `npm run build:web` into dist/web-app) from disk: the page
// at `/`, its hashed assets under `/assets/`. The server never imports the app's code; it only
// sends its files, with the app's Content-Security-Policy (no inline script, connect-src 'self').

import { readFile } from "node:fs/promises";
import path from "node:path";
import type { UWS } from "../platform/uws.ts";
import { SECURITY_HEADERS } from "./respond.ts";

/**
 * The app's pages: scripts and styles only from this origin, never inline; API and socket calls
 * only to this origin ('self' covers ws:/wss: of the same host); images also as data: URLs (the
 * two-factor QR code); no frames, no plugins, no <base>, forms post only here.
 */
export const WEB_APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

// Asset names as the build writes them: one path segment, no dots at the start, a known type.
// Anything else (encoded slashes, "..", odd bytes) is simply not a file here.
// eslint-disable-next-line security/detect-unsafe-regex -- segments cannot contain dots, so each character has one way to match: linear
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.(js|css|png|svg|ico|json|txt)$/;

/** The headers of an app response: the API's security headers with the app's CSP and caching. */
function appHeaders(cacheControl: string): [string, string][] {
  return [
    ...SECURITY_HEADERS.filter(([name]) => name !== "Content-Security-Policy" && name !== "Cache-Control"),
    ["Content-Security-Policy", WEB_APP_CSP],
    ["Cache-Control", cacheControl],
    ["Cross-Origin-Opener-Policy", "same-origin"],
  ];
}

const MISSING_BUILD =
  "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Parley</title></head><body>" +
  "<h1>The Parley web app is not built</h1><p>Run <code>npm run build:web</code> (<code>npm start</code> does it before starting), " +
  "then reload. The API works without it.</p></body></html>";

function send(res: UWS.HttpResponse, status: string, headers: [string, string][], contentType: string, body: string | Buffer): void {
  res.cork(() => {
    res.writeStatus(status);
    for (const [name, value] of headers) res.writeHeader(name, value);
    res.writeHeader("Content-Type", contentType);
    res.end(body);
  });
}

/** Registers `/` (the app's page) and `/assets/:name` (its scripts, styles and images). */
export function registerWebApp(app: UWS.TemplatedApp, options: { dir: string }): void {
  const serve = (res: UWS.HttpResponse, file: string, cacheControl: string, onMissing: () => void) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- `file` is index.html or a name that passed ASSET_NAME (one segment, no leading dot)
    readFile(path.join(options.dir, file)).then(
      (body) => {
        if (aborted) return;
        const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
        send(res, "200 OK", appHeaders(cacheControl), type, body);
      },
      () => {
        if (!aborted) onMissing();
      },
    );
  };

  // The page itself is small and names the current hashed assets: always revalidated.
  app.get("/", (res) => {
    serve(res, "index.html", "no-cache", () => send(res, "503 Service Unavailable", appHeaders("no-store"), "text/html; charset=utf-8", MISSING_BUILD));
  });
  app.get("/assets/:name", (res, req) => {
    const name = req.getParameter(0) ?? "";
    const notFound = () => send(res, "404 Not Found", appHeaders("no-store"), "text/plain; charset=utf-8", "not found");
    if (!ASSET_NAME.test(name)) {
      notFound();
      return;
    }
    // Names carry a content hash, so a cached copy is never stale.
    serve(res, path.join("assets", name), "public, max-age=31536000, immutable", notFound);
  });
}
