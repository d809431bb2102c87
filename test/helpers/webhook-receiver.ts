// A real HTTP webhook receiver for tests, written the way a partner would: it verifies the
// Parley-Signature of every delivery with the endpoint secret (and the replay window), answers
// according to a switchable behaviour (accept, fail, hang, redirect), and records what it saw.

import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ParleyEvent } from "../../protocol/index.ts";
import { verifySignature } from "../../server/webhooks/signature.ts";
import { Waiters } from "./wait.ts";

/** One request the receiver got. */
export interface ReceivedDelivery {
  at: number;
  signatureValid: boolean;
  /** The answer it gave. */
  status: number;
  headers: IncomingMessage["headers"];
  event: ParleyEvent;
}

/** How the receiver answers the next requests. */
export type ReceiverMode = "accept" | "fail" | "redirect" | "hang";

/** A running receiver. */
export interface WebhookReceiver {
  url: string;
  port: number;
  /** Every request, in arrival order. */
  readonly requests: ReceivedDelivery[];
  /** Events it accepted (2xx), in order. */
  readonly accepted: ParleyEvent[];
  /** The endpoint secret to verify with (set after registering). */
  secret: string;
  mode: ReceiverMode;
  /** Resolves once `condition` holds (checked after every request), or rejects after `timeoutMs`. */
  waitFor(condition: (receiver: WebhookReceiver) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Starts a receiver on 127.0.0.1 (an ephemeral port). Signatures are checked against `now`: the
 * clock of the server it receives from (signature timestamps follow that server's clock).
 */
export async function startWebhookReceiver(options: { now?: () => number } = {}): Promise<WebhookReceiver> {
  const now = options.now ?? Date.now;
  const waiters = new Waiters();
  const hanging = new Set<() => void>();
  const receiver: WebhookReceiver = {
    url: "",
    port: 0,
    requests: [],
    accepted: [],
    secret: "",
    mode: "accept",
    async waitFor(condition, timeoutMs = 15_000) {
      await waiters.until(
        () => condition(receiver) || undefined,
        timeoutMs,
        () => `webhook receiver: condition not met in ${timeoutMs} ms (${receiver.requests.length} requests, ${receiver.accepted.length} accepted)`,
      );
    },
    close() {
      for (const release of hanging) release();
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const signature = String(req.headers["parley-signature"] ?? "");
    const signatureValid = receiver.secret !== "" && verifySignature(receiver.secret, body, signature, Math.floor(now() / 1000));
    const mode = receiver.mode;
    let status = 200;
    if (!signatureValid) status = 401;
    else if (mode === "fail") status = 503;
    else if (mode === "redirect") status = 302;
    const record = () => {
      receiver.requests.push({ at: Date.now(), signatureValid, status, headers: req.headers, event: JSON.parse(body) as ParleyEvent });
      if (status >= 200 && status < 300) receiver.accepted.push(JSON.parse(body) as ParleyEvent);
      waiters.notify();
    };
    if (mode === "hang" && signatureValid) {
      await new Promise<void>((resolve) => {
        hanging.add(resolve);
        req.on("close", () => resolve());
      });
      return;
    }
    record();
    if (status === 302) res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" }).end();
    else res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : `no (${status}) ${"x".repeat(2000)}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/parley/webhook`;
  return receiver;
}
