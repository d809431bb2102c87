// Outbound webhook requests, guarded against server-side request forgery: the URL must be https
// (http only with the private-address override), without credentials; its host is resolved
// first and EVERY resolved address must be public; the connection then goes to the checked
// address (pinned through `lookup`, so a second DNS answer cannot swap in an internal one) while
// TLS still verifies the certificate for the host name. Redirects are never followed, the whole
// request has a deadline, and only a short excerpt of the response body is kept.
//
// Built on node:http/https rather than fetch: they let us pin the connection to the address we
// checked (a per-request `lookup`), never follow redirects, and stop reading a response body
// after a few kilobytes, without adding a dependency.

import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { isPublicAddress } from "./address-policy.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Longest URL accepted for an endpoint. */
export const MAX_URL_LENGTH = 2048;
/** Characters of a response body kept (for the delivery log). */
export const EXCERPT_CHARS = 256;
/** Response bytes read at most; the rest is discarded unread. */
const MAX_RESPONSE_BYTES = 16 * 1024;

/** A webhook URL that may not be used; `message` says why (safe to show the caller). */
export class WebhookUrlError extends Error {
  override readonly name = "WebhookUrlError";
}

/** Resolves a host name to all its addresses. */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/** What the URL checks need. */
export interface UrlPolicy {
  /** Allow private, loopback and link-local addresses, and plain http (development and tests). */
  allowPrivate: boolean;
  resolve?: Resolver;
}

/** Checks a URL's shape (no network): https (or http when allowed), no credentials, a host. */
export function checkUrlShape(raw: string, policy: Pick<UrlPolicy, "allowPrivate">): URL {
  if (raw.length > MAX_URL_LENGTH) throw new WebhookUrlError(`the URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError("not an absolute URL");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && policy.allowPrivate)) {
    throw new WebhookUrlError("the URL must use https");
  }
  if (url.username || url.password) throw new WebhookUrlError("the URL must not contain credentials (the signature authenticates Parley)");
  if (!url.hostname) throw new WebhookUrlError("the URL has no host");
  return url;
}

/**
 * Resolves the URL's host and checks every address; returns the addresses to connect to.
 * Throws {@link WebhookUrlError} when the host does not resolve or any address is not public.
 */
export async function resolveTarget(url: URL, policy: UrlPolicy): Promise<LookupAddress[]> {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: LookupAddress[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(host);
    } catch {
      throw new WebhookUrlError(`the host ${host} does not resolve`);
    }
  }
  if (addresses.length === 0) throw new WebhookUrlError(`the host ${host} does not resolve`);
  if (!policy.allowPrivate) {
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused) throw new WebhookUrlError(`the host ${host} resolves to ${refused.address}, a private, loopback or reserved address`);
  }
  return addresses;
}

/** A webhook POST. */
export interface OutboundRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** How a POST went. */
export interface OutboundResult {
  /** A 2xx status arrived. */
  ok: boolean;
  /** The HTTP status (null when no response arrived). */
  status: number | null;
  /** Why it failed, for the delivery log (never the response body). */
  error: string | null;
  /** The start of the response body, control characters removed. */
  excerpt: string;
  durationMs: number;
}

/** Sends webhook POSTs. */
export interface WebhookTransport {
  post(request: OutboundRequest): Promise<OutboundResult>;
}

function excerptOf(bytes: Buffer): string {
  return bytes.toString("utf8").replace(/[\p{Cc}\p{Cf}]+/gu, " ").trim().slice(0, EXCERPT_CHARS);
}

/** The real transport: guarded node:http(s) requests with a deadline. */
export class SafeHttpTransport implements WebhookTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly options: UrlPolicy & { timeoutMs: number; userAgent: string }) {}

  async post(request: OutboundRequest): Promise<OutboundResult> {
    const started = monotonicClock();
    const elapsed = () => Math.round(monotonicClock() - started);
    let target: { url: URL; address: LookupAddress };
    try {
      const url = checkUrlShape(request.url, this.options);
      const [address] = await resolveTarget(url, this.options);
      target = { url, address };
    } catch (error) {
      const message = error instanceof WebhookUrlError ? `refused: ${error.message}` : "refused: the URL could not be checked";
      return { ok: false, status: null, error: message, excerpt: "", durationMs: elapsed() };
    }
    return new Promise<OutboundResult>((resolve) => {
      let settled = false;
      const finish = (result: Omit<OutboundResult, "durationMs">) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve({ ...result, durationMs: elapsed() });
      };
      const { url, address } = target;
      const secure = url.protocol === "https:";
      const body = Buffer.from(request.body, "utf8");
      const req = (secure ? https : http).request({
        method: "POST",
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: url.port || (secure ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        agent: secure ? this.httpsAgent : this.httpAgent,
        headers: { ...request.headers, "User-Agent": this.options.userAgent, "Content-Length": String(body.length) },
        // Connect to the address we checked, whatever DNS says now.
        lookup: ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
          if (options?.all) callback(null, [address]);
          else callback(null, address.address, address.family);
        }) as unknown as typeof dnsLookup,
      });
      const deadline = setTimeout(() => {
        req.destroy(new Error(`timed out after ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      req.on("error", (error) => finish({ ok: false, status: null, error: error.message.slice(0, 200), excerpt: "" }));
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          const ok = status >= 200 && status < 300;
          const error = ok ? null : status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`;
          finish({ ok, status, error, excerpt: excerptOf(Buffer.concat(chunks)) });
        };
        res.on("data", (chunk: Buffer) => {
          if (size < MAX_RESPONSE_BYTES) chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - size));
          size += chunk.length;
          if (size >= MAX_RESPONSE_BYTES) {
            res.destroy();
            done();
          }
        });
        res.on("end", done);
        res.on("error", done);
        res.on("close", done);
      });
      req.end(body);
    });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
