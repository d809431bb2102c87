// A Server-Sent Events consumer for tests, written as a partner's would be: it follows
// /v1/events/stream, remembers the last event id, and on any end of the stream (server restart,
// network error) reconnects with Last-Event-ID after a short pause, until stopped.

import type { ParleyEvent } from "../../protocol/index.ts";
import { Waiters } from "./wait.ts";

/** A running consumer. */
export interface SseConsumer {
  /** Events received, in arrival order. */
  readonly events: ParleyEvent[];
  /** Last event id received (its cursor). */
  readonly lastEventId: string | undefined;
  /** How many times it (re)connected successfully. */
  readonly connections: number;
  /** HTTP statuses of refused connection attempts. */
  readonly refusals: { status: number; body: string }[];
  waitFor(condition: (events: ParleyEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Parses SSE text into messages (id + data), keeping an incomplete tail for the next chunk. */
export function parseSse(buffer: string): { messages: { id?: string; event?: string; data: string }[]; rest: string } {
  const messages: { id?: string; event?: string; data: string }[] = [];
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    const message: { id?: string; event?: string; data: string } = { data: "" };
    let hasData = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") message.id = value;
      else if (field === "event") message.event = value;
      else if (field === "data") {
        message.data += (hasData ? "\n" : "") + value;
        hasData = true;
      }
    }
    if (hasData) messages.push(message);
  }
  return { messages, rest };
}

/** Follows the stream at `baseUrl` with `credential` from `cursor` (undefined: from now). */
export function followSse(baseUrl: string, credential: string, cursor?: number, options: { retryMs?: number } = {}): SseConsumer {
  const events: ParleyEvent[] = [];
  const refusals: { status: number; body: string }[] = [];
  let lastEventId = cursor === undefined ? undefined : String(cursor);
  let connections = 0;
  let stopped = false;
  let controller: AbortController | null = null;
  const waiters = new Waiters();
  const notify = () => waiters.notify();

  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers: Record<string, string> = { authorization: `Bearer ${credential}`, accept: "text/event-stream" };
        if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
        const response = await fetch(`${baseUrl}/v1/events/stream`, { headers, signal: controller.signal });
        if (response.status !== 200) {
          refusals.push({ status: response.status, body: await response.text() });
          notify();
        } else if (response.body) {
          connections++;
          notify();
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            const parsed = parseSse(buffer);
            buffer = parsed.rest;
            for (const message of parsed.messages) {
              if (message.event === "parley-error") continue;
              if (message.id !== undefined) lastEventId = message.id;
              events.push(JSON.parse(message.data) as ParleyEvent);
            }
            if (parsed.messages.length > 0) notify();
          }
        }
      } catch {
        // connection refused or reset (server restarting): retry below
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 100));
    }
  };
  const running = run();

  return {
    events,
    get lastEventId() {
      return lastEventId;
    },
    get connections() {
      return connections;
    },
    refusals,
    async waitFor(condition, timeoutMs = 15_000) {
      await waiters.until(
        () => condition(events) || undefined,
        timeoutMs,
        () => `SSE consumer: condition not met in ${timeoutMs} ms (${events.length} events, ${connections} connections)`,
      );
    },
    async stop() {
      stopped = true;
      controller?.abort();
      await running;
    },
  };
}
