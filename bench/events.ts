// Measures partner events on one in-process server: (1) how many directory-style events per
// second the recorder stores and announces; (2) message events end to end — Yjs updates through
// the write path (commit), derived after commit, followed by an SSE consumer and delivered to a
// signing-verifying webhook receiver — as throughput; (3) the delay from commit to SSE and to
// webhook delivery at a steady rate.
// Usage: node --import tsx bench/events.ts [--events 5000] [--messages 5000] [--conversations 50]
//        [--rate 50] [--seconds 10] [--debounce 100] [--concurrency 64]

import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import * as Y from "yjs";
import { appendMessage, type ParleyEvent } from "../protocol/index.ts";
import { type ParleyServer, startServer } from "../server/app.ts";
import { loadConfig } from "../server/platform/config.ts";
import { createLogger } from "../server/platform/logger.ts";
import { verifySignature } from "../server/webhooks/signature.ts";
import { ONE_ADDRESS_FOR_ALL_CLIENTS } from "./servers/bench-limits.ts";
import { signUpFromOutbox } from "./servers/sign-up.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "5000" },
    messages: { type: "string", default: "5000" },
    conversations: { type: "string", default: "50" },
    rate: { type: "string", default: "50" },
    seconds: { type: "string", default: "10" },
    debounce: { type: "string", default: "100" },
    concurrency: { type: "string", default: "64" },
  },
});
const settings = {
  events: Number(values.events),
  messages: Number(values.messages),
  conversations: Number(values.conversations),
  rate: Number(values.rate),
  seconds: Number(values.seconds),
  debounceMs: Number(values.debounce),
  concurrency: Number(values.concurrency),
};

const PASSWORD = "violet-harbour-tractor-91!";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(1);
  return `n=${sorted.length} p50=${f(percentile(sorted, 50))} p95=${f(percentile(sorted, 95))} p99=${f(percentile(sorted, 99))} max=${f(sorted.at(-1) ?? Number.NaN)} ms`;
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Where an event arrived, and when (performance.now()). */
type Arrivals = Map<string, number>;

const keyOf = (event: ParleyEvent) => (event.type === "message.created" ? event.data.message.id : event.id);

/** A webhook receiver that verifies signatures and notes arrival times. */
async function startReceiver(arrivals: Arrivals, secret: { value: string }) {
  let invalid = 0;
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const at = performance.now();
    if (!verifySignature(secret.value, body, String(req.headers["parley-signature"]), Math.floor(Date.now() / 1000))) invalid++;
    const event = JSON.parse(body) as ParleyEvent;
    if (!arrivals.has(keyOf(event))) arrivals.set(keyOf(event), at);
    res.writeHead(200).end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, invalid: () => invalid, close: () => new Promise((r) => server.close(r)) };
}

/** An SSE consumer noting arrival times. */
function followSse(baseUrl: string, key: string, arrivals: Arrivals): () => void {
  const controller = new AbortController();
  void (async () => {
    const response = await fetch(`${baseUrl}/v1/events/stream`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        const blocks = buffer.split("\n\n");
        buffer = blocks.pop() ?? "";
        const at = performance.now();
        for (const block of blocks) {
          const data = block.split("\n").find((line) => line.startsWith("data: "));
          if (!data) continue;
          const event = JSON.parse(data.slice(6)) as ParleyEvent;
          if (!arrivals.has(keyOf(event))) arrivals.set(keyOf(event), at);
        }
      }
    } catch {
      // aborted at the end
    }
  })();
  return () => controller.abort();
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "parley-bench-events-"));
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    PARLEY_DATA_DIR: dataDir,
    PARLEY_WEBHOOK_ALLOW_PRIVATE: "true",
    PARLEY_EVENT_DEBOUNCE_MS: String(settings.debounceMs),
    PARLEY_ARGON2_MEMORY_KIB: "19456",
    ...ONE_ADDRESS_FOR_ALL_CLIENTS,
  });
  const server: ParleyServer = await startServer(config, createLogger("warn"));
  const base = `http://127.0.0.1:${server.port}`;
  const api = async (method: string, route: string, token: string | null, body?: unknown) => {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await response.json()) as Record<string, unknown>;
  };
  const webhookArrivals: Arrivals = new Map();
  const sseArrivals: Arrivals = new Map();
  const secret = { value: "" };
  const receiver = await startReceiver(webhookArrivals, secret);
  try {
    const signup = await signUpFromOutbox(base, dataDir, { email: "bench@helpdesk.example", password: PASSWORD, name: "Bench", organisation: "Bench BV" });
    const token = signup.accessToken as string;
    const orgId = (signup.organisation as { id: string }).id;
    const userId = (signup.user as { id: string }).id;
    const key = (await api("POST", `/v1/organisations/${orgId}/api-keys`, token, { name: "bench", scopes: ["conversations:read"] })).key as string;
    const endpoint = await api("POST", `/v1/organisations/${orgId}/webhooks`, token, { url: receiver.url });
    secret.value = endpoint.secret as string;
    const conversations: string[] = [];
    for (let i = 0; i < settings.conversations; i++) {
      conversations.push((await api("POST", "/v1/conversations", token, { title: `Bench ${i}` })).id as string);
    }
    const stopSse = followSse(base, key, sseArrivals);
    await new Promise((r) => setTimeout(r, 200));
    console.log(`# partner events bench: ${settings.conversations} conversations, debounce ${settings.debounceMs} ms, node ${process.version}`);

    // (1) Recorder throughput: directory-style events for one organisation.
    {
      const started = performance.now();
      await pool(settings.events, settings.concurrency, (i) =>
        server.events.recorder.record("participant.added", conversations[i % conversations.length], {
          organisation: "org_bench_partner",
          role: "participant",
          actor: { id: userId, org: orgId },
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const streamed = await waitFor(() => sseArrivals.size >= settings.events, 60_000);
      const sseSeconds = (performance.now() - started) / 1000;
      console.log(
        `recorder: ${settings.events} events stored in ${seconds.toFixed(2)} s = ${Math.round(settings.events / seconds)} events/s; ` +
          `all on the SSE stream after ${sseSeconds.toFixed(2)} s${streamed ? "" : " (INCOMPLETE)"}`,
      );
    }

    // (2) Message events end to end, as fast as the write path commits.
    const writePath = server.identity.services.writePath;
    const docs = conversations.map(() => new Y.Doc());
    const actor = { user: userId, org: orgId, session: "bench" };
    const commitAt = new Map<string, number>();
    const submit = async (c: number, id: string) => {
      const doc = docs[c];
      let update: Uint8Array | null = null;
      const capture = (u: Uint8Array) => {
        update = u;
      };
      doc.on("update", capture);
      appendMessage(doc, { id, authorUser: userId, authorOrg: orgId, text: `bench message ${id}`, createdAt: Date.now() });
      doc.off("update", capture);
      await writePath.submit(conversations[c], update as unknown as Uint8Array, actor);
      commitAt.set(id, performance.now());
    };
    {
      const webhookBefore = webhookArrivals.size;
      const started = performance.now();
      await pool(settings.messages, settings.concurrency, (i) => submit(i % conversations.length, `t${i}`));
      const committed = performance.now();
      const ids = Array.from({ length: settings.messages }, (_, i) => `t${i}`);
      const sseDone = await waitFor(() => ids.every((id) => sseArrivals.has(id)), 120_000);
      const sseAt = performance.now();
      const hookDone = await waitFor(() => ids.every((id) => webhookArrivals.has(id)), 300_000);
      const hookAt = performance.now();
      const s = (t: number) => (t - started) / 1000;
      console.log(
        `messages: ${settings.messages} committed in ${s(committed).toFixed(2)} s (${Math.round(settings.messages / s(committed))}/s); ` +
          `message.created on SSE after ${s(sseAt).toFixed(2)} s (${Math.round(settings.messages / s(sseAt))} events/s)${sseDone ? "" : " INCOMPLETE"}; ` +
          `webhook received all after ${s(hookAt).toFixed(2)} s (${Math.round((webhookArrivals.size - webhookBefore) / s(hookAt))} deliveries/s)${hookDone ? "" : " INCOMPLETE"}`,
      );
    }

    // (3) Delay from commit to SSE and to webhook at a steady rate.
    {
      const total = settings.rate * settings.seconds;
      const interval = 1000 / settings.rate;
      const started = performance.now();
      const pending: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const due = started + i * interval;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        pending.push(submit(i % conversations.length, `r${i}`));
      }
      await Promise.all(pending);
      const ids = Array.from({ length: total }, (_, i) => `r${i}`);
      await waitFor(() => ids.every((id) => sseArrivals.has(id) && webhookArrivals.has(id)), 60_000);
      const delays = (arrivals: Arrivals) => ids.filter((id) => arrivals.has(id)).map((id) => (arrivals.get(id) ?? 0) - (commitAt.get(id) ?? 0));
      console.log(`steady ${settings.rate} messages/s for ${settings.seconds} s, commit → SSE:     ${summary(delays(sseArrivals))}`);
      console.log(`steady ${settings.rate} messages/s for ${settings.seconds} s, commit → webhook: ${summary(delays(webhookArrivals))}`);
    }
    console.log(`webhook signatures invalid: ${receiver.invalid()}`);
    stopSse();
  } finally {
    await server.close();
    await receiver.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
