// The small HTML pages a mailed link opens (an invitation, a sign-up confirmation): a GET that
// shows a button and uses nothing (mail scanners fetch links), the button's plain form POST. No
// script, one stylesheet allowed by its hash.

import { createHash } from "node:crypto";
import type { ErrorCode } from "../../protocol/index.ts";
import { type RequestHeaders, type RouteDefinition, type RouteResult, route } from "./route.ts";

/** A plain HTML form post from a browser (a link page's button), not an API call. */
export function isBrowserForm(headers: RequestHeaders): boolean {
  return headers.contentType.startsWith("application/x-www-form-urlencoded") && headers.accept.includes("text/html");
}

/** Text made safe to put into a page's HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The pages' only style, allowed by its hash: still no inline script, no other source of anything.
const PAGE_STYLE =
  "body{font-family:system-ui,sans-serif;color:#1d2330;background:#f4f6fa;margin:0;line-height:1.45}" +
  "main{max-width:460px;margin:4rem auto;background:#fff;border:1px solid #d9dee7;border-radius:8px;padding:1.5rem}" +
  "h1{font-size:1.35rem;margin:0 0 .75rem}label{display:block;font-weight:600;margin:.5rem 0 .25rem}" +
  "input{font:inherit;padding:.45rem .55rem;border:1px solid #aab3c2;border-radius:5px;width:10rem;letter-spacing:.2em}" +
  "button{font:inherit;cursor:pointer;margin-top:.75rem;padding:.5rem 1rem;border-radius:5px;border:1px solid #2b59c3;background:#2b59c3;color:#fff}" +
  "[role=alert]{color:#b3261e}.brand{font-weight:700;color:#2b59c3}";

/** The link pages' CSP: the API's, plus their one stylesheet and posting their form here. */
export const LINK_PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash("sha256").update(PAGE_STYLE).digest("base64")}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

/** A whole page: the brand, then `body` (HTML the caller escaped). */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${PAGE_STYLE}</style></head>` +
    `<body><main><p class="brand">Parley</p>${body}</main></body></html>`;
}

/** An HTML page answer with the pages' CSP. */
export function htmlPage(status: number, html: string): RouteResult {
  return { status, html, headers: [["Content-Security-Policy", LINK_PAGE_CSP]] };
}

/**
 * The GET of a mailed link: the page `render` builds (with its button that POSTs to the same
 * address), or `unavailable` with 410 when the link is no good. Nothing is used by it.
 */
export function linkPageRoute(spec: {
  path: string;
  summary: string;
  tags: string[];
  /** The code of a link that is unknown, expired or used (answered as the HTML page too). */
  invalid: ErrorCode;
  render(token: string): Promise<string>;
  unavailable: string;
}): RouteDefinition {
  return route({
    method: "get",
    path: spec.path,
    auth: "public",
    summary: spec.summary,
    tags: spec.tags,
    response: { status: 200, description: "An HTML page with a form that POSTs to the same address.", html: true },
    errors: [spec.invalid],
    async handler({ params }) {
      try {
        return htmlPage(200, await spec.render(params.token));
      } catch {
        return htmlPage(410, spec.unavailable);
      }
    },
  });
}
