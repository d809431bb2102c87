// One client socket of the load generator: opens a WebSocket, runs the adapter's handshake until
// the initial sync is done, then hands every update and ack to the caller with its receive time
// (taken before any parsing).

import { threadId } from "node:worker_threads";
import WebSocket from "ws";
import type { ClientAuth, ProtocolClient } from "../clients/protocol-client.ts";
import { now } from "./clock.ts";

/** What a client reports after it is synced. */
export interface ClientEvents {
  update(update: Uint8Array, receivedAt: number): void;
  ack(receivedAt: number): void;
  error(message: string): void;
  closed(code: number): void;
}

const IGNORE: ClientEvents = { update() {}, ack() {}, error() {}, closed() {} };

/**
 * Each client connects from its own loopback address (127.<thread>.<n>.<m>, cycling over 10,000
 * per thread): the people of a helpdesk come from many addresses, and a server that caps open
 * sockets per address (Parley: 500 by default) must not see the whole load as one address.
 */
let clientsOpened = 0;
function nextLocalAddress(): string {
  const n = clientsOpened++ % 10_000;
  return `127.${1 + (threadId % 250)}.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}

export class BenchClient {
  readonly ws: WebSocket;
  /** Resolves with the bytes of document state received in the initial sync. */
  readonly synced: Promise<number>;
  events: ClientEvents = IGNORE;
  private isSynced = false;

  constructor(protocol: ProtocolClient, port: number, room: string, auth: ClientAuth, timeoutMs = 30_000) {
    const session = protocol.session(room, auth);
    this.ws = new WebSocket(protocol.url(port, room, auth), { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024, localAddress: nextLocalAddress() });
    const ws = this.ws;
    const reply = (frame: Uint8Array) => ws.send(frame);
    this.synced = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`not synced within ${timeoutMs} ms`));
        ws.terminate();
      }, timeoutMs);
      ws.on("open", () => {
        const opening = session.opening();
        for (const frame of opening) ws.send(frame);
        if (opening.length === 0) done(0);
      });
      const done = (bytes: number) => {
        if (this.isSynced) return;
        this.isSynced = true;
        clearTimeout(timer);
        resolve(bytes);
      };
      ws.on("message", (data: Buffer) => {
        const receivedAt = now();
        let incoming: ReturnType<typeof session.receive>;
        try {
          incoming = session.receive(data, reply);
        } catch (error) {
          this.events.error(`undecodable frame: ${(error as Error).message}`);
          return;
        }
        switch (incoming.kind) {
          case "update":
            this.events.update(incoming.update, receivedAt);
            return;
          case "ack":
            this.events.ack(receivedAt);
            return;
          case "synced":
            done(incoming.bytes);
            return;
          case "error":
            if (!this.isSynced) {
              clearTimeout(timer);
              reject(new Error(incoming.message));
            }
            this.events.error(incoming.message);
            return;
        }
      });
      ws.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.on("close", (code) => {
        clearTimeout(timer);
        reject(new Error(`closed with ${code} before sync`));
        this.events.closed(code);
      });
    });
    // Callers that only await later must not trip an unhandled rejection meanwhile.
    this.synced.catch(() => {});
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: Uint8Array): void {
    this.ws.send(frame);
  }

  /** Closes the socket and resolves once it is closed (or after `timeoutMs`, terminating it). */
  close(timeoutMs = 2000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, timeoutMs);
      this.ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close();
    });
  }
}

/** Runs `tasks` with at most `limit` in flight; resolves to each task's outcome. */
export async function withConcurrency<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await task(index) };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return results;
}
