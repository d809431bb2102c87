// Cross-node fan-out, measured: writers on node A, readers on node B (two nodes sharing Postgres
// and Redis), next to the same load on one node (Postgres, in-process bus). Reports delivery
// latency (writer's send → reader's receipt) p50/p99, ack latency, and deliveries per second at a
// fixed offered load and at saturation (each writer keeps a window of writes in flight).
//
//   node --import tsx bench/cluster-latency.ts [--conversations 20] [--readers 5] [--rate 50]
//        [--seconds 10] [--window 16] [--database-url postgres://…] [--redis-url redis://…]
//
// Every reader sees one writer's updates in sequence order, so the n-th update a reader receives
// on a conversation is the writer's n-th: latency needs no payload decoding.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import WebSocket from "ws";
import * as Y from "yjs";
import { decodeServerFrame, encodeControlFrame, encodeDocFrame, PROTOCOL_VERSION } from "../protocol/index.ts";
import { loadOrCreateKeys } from "../server/crypto/keys.ts";
import { mintToken } from "../server/auth/tokens.ts";
import { launchServer, type RunningServer } from "./servers/launch.ts";
import { ONE_ADDRESS_FOR_ALL_CLIENTS } from "./servers/bench-limits.ts";
import { systemClock } from "../server/platform/clock.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    conversations: { type: "string", default: "20" },
    readers: { type: "string", default: "5" },
    rate: { type: "string", default: "50" },
    seconds: { type: "string", default: "10" },
    window: { type: "string", default: "16" },
    "database-url": { type: "string", default: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" },
    "redis-url": { type: "string", default: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" },
  },
});
const CONVERSATIONS = Number(args.conversations);
const READERS = Number(args.readers);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const WINDOW = Number(args.window);

interface Socket {
  ws: WebSocket;
  onFrame: (frame: ReturnType<typeof decodeServerFrame>) => void;
}

async function connect(url: string, token: string, conversation: string): Promise<Socket> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const socket: Socket = { ws, onFrame: () => {} };
  const synced = new Promise<void>((resolve) => {
    socket.onFrame = (frame) => {
      if (frame.kind === "doc" && frame.message.type === "sync-step2") resolve();
    };
  });
  ws.on("message", (data: ArrayBuffer) => socket.onFrame(decodeServerFrame(new Uint8Array(data))));
  ws.send(encodeControlFrame({ type: "auth", token, protocol: PROTOCOL_VERSION }));
  ws.send(encodeControlFrame({ type: "join", conversation }));
  ws.send(encodeDocFrame(conversation, { type: "sync-step1", stateVector: new Uint8Array([0]) }));
  await synced;
  return socket;
}

/** One writer's document: each call appends a short string and returns that update (about 30 bytes). */
function updateSource(): () => Uint8Array {
  const doc = new Y.Doc();
  const text = doc.getText("notes");
  let last: Uint8Array = new Uint8Array(0);
  doc.on("update", (u: Uint8Array) => {
    last = u;
  });
  let i = 0;
  return () => {
    text.insert(text.length, `m${i++};`);
    return last;
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface PhaseResult {
  sent: number;
  acked: number;
  delivered: number;
  expected: number;
  seconds: number;
  delivery: number[];
  ack: number[];
}

/** One measured phase: `rate` writes/s per writer, or a closed loop of `window` writes in flight when rate is 0. */
async function phase(
  writers: Socket[],
  sources: (() => Uint8Array)[],
  readers: Socket[][],
  conversations: string[],
  options: { rate: number; window: number; seconds: number },
): Promise<PhaseResult> {
  const result: PhaseResult = { sent: 0, acked: 0, delivered: 0, expected: 0, seconds: 0, delivery: [], ack: [] };
  const sentAt = conversations.map(() => [] as number[]);
  const ackCursor = conversations.map(() => 0);
  const receiveCursor = readers.map((group) => group.map(() => 0));
  let stopping = false;
  const done: Promise<void>[] = [];

  conversations.forEach((conversation, c) => {
    const writer = writers[c];
    const send = () => {
      if (stopping) return;
      const update = sources[c]();
      sentAt[c].push(performance.now());
      writer.ws.send(encodeDocFrame(conversation, { type: "update", update }));
      result.sent++;
    };
    writer.onFrame = (frame) => {
      if (frame.kind === "control" && frame.message.type === "ack") {
        result.ack.push(performance.now() - sentAt[c][ackCursor[c]++]);
        result.acked++;
        if (options.rate === 0) send();
      }
    };
    readers[c].forEach((reader, r) => {
      reader.onFrame = (frame) => {
        if (frame.kind === "doc" && frame.message.type === "update") {
          const n = receiveCursor[c][r]++;
          result.delivery.push(performance.now() - sentAt[c][n]);
          result.delivered++;
        }
      };
    });
    if (options.rate === 0) {
      for (let i = 0; i < options.window; i++) send();
    } else {
      // Spread writers over the interval so they do not all fire in the same millisecond.
      const interval = 1000 / options.rate;
      const start = performance.now() + (interval * c) / conversations.length;
      done.push(
        (async () => {
          let k = 0;
          while (!stopping) {
            const due = start + k * interval;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            if (!stopping) send();
            k++;
          }
        })(),
      );
    }
  });
  const started = performance.now();
  await new Promise((r) => setTimeout(r, options.seconds * 1000));
  stopping = true;
  result.seconds = (performance.now() - started) / 1000;
  await Promise.all(done);
  // Let the last writes arrive (their latency counts; deliveries/s uses the sending interval).
  const expected = () => result.sent * READERS;
  const deadline = performance.now() + 10_000;
  while ((result.acked < result.sent || result.delivered < expected()) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  result.expected = expected();
  return result;
}

function summary(label: string, r: PhaseResult) {
  const delivery = [...r.delivery].sort((a, b) => a - b);
  const ack = [...r.ack].sort((a, b) => a - b);
  return {
    run: label,
    "writes/s": Math.round(r.acked / r.seconds),
    "deliveries/s": Math.round(r.delivered / r.seconds),
    "delivered/expected": `${r.delivered}/${r.expected}`,
    "delivery p50 ms": Number(percentile(delivery, 50).toFixed(2)),
    "delivery p99 ms": Number(percentile(delivery, 99).toFixed(2)),
    "delivery max ms": Number((delivery.at(-1) ?? Number.NaN).toFixed(1)),
    "ack p50 ms": Number(percentile(ack, 50).toFixed(2)),
    "ack p99 ms": Number(percentile(ack, 99).toFixed(2)),
  };
}

async function run(mode: "one node" | "two nodes") {
  const id = randomBytes(4).toString("hex");
  const schema = `bench_${id}`;
  const admin = new pg.Client({ connectionString: args["database-url"] });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const dbUrl = new URL(args["database-url"]);
  dbUrl.searchParams.set("options", `-c search_path=${schema}`);
  const base = await mkdtemp(path.join(tmpdir(), "bench-cluster-"));
  const keys = await loadOrCreateKeys(path.join(base, "shared", "keys"));
  const servers: RunningServer[] = [];
  try {
    const names = mode === "two nodes" ? ["a", "b"] : ["a"];
    for (const name of names) {
      servers.push(
        await launchServer({
          name: `parley-${name}`,
          nodeArgs: ["bin/parley.js", "serve"],
          cwd: repoRoot,
          env: {
            PORT: "0",
            HOST: "127.0.0.1",
            PARLEY_DATA_DIR: path.join(base, name),
            PARLEY_KEYS_DIR: path.join(base, "shared", "keys"),
            PARLEY_LOG_LEVEL: "info",
            PARLEY_RUN_SOURCE: "1", // measure the code as it is, not an older dist/
            DATABASE_URL: dbUrl.toString(),
            PARLEY_MAX_FRAMES_PER_SECOND: "1000000",
            ...ONE_ADDRESS_FOR_ALL_CLIENTS,
            ...(mode === "two nodes" ? { REDIS_URL: args["redis-url"], PARLEY_REDIS_PREFIX: `bench:${id}:`, PARLEY_NODE_ID: `${id}-${name}` } : {}),
          },
        }),
      );
    }
    const writerUrl = `ws://127.0.0.1:${servers[0].port}/ws`;
    const readerUrl = `ws://127.0.0.1:${servers.at(-1)!.port}/ws`;
    const conversations = Array.from({ length: CONVERSATIONS }, (_, i) => `bench-${id}-${i}`);
    const token = await mintToken(keys, { issuer: "parley", audience: "parley" }, {
      user: "bench",
      org: "bench",
      conversations: Object.fromEntries(conversations.map((c) => [c, "writer" as const])),
      ttlSeconds: 3600,
    }, systemClock);
    const readers = await Promise.all(conversations.map((c) => Promise.all(Array.from({ length: READERS }, () => connect(readerUrl, token, c)))));
    const writers = await Promise.all(conversations.map((c) => connect(writerUrl, token, c)));
    const sources = conversations.map(() => updateSource());
    const closed: number[] = [];
    for (const socket of [...writers, ...readers.flat()]) socket.ws.on("close", (code: number) => closed.push(code));
    await phase(writers, sources, readers, conversations, { rate: RATE, window: WINDOW, seconds: 2 }); // warm-up
    const fixed = await phase(writers, sources, readers, conversations, { rate: RATE, window: WINDOW, seconds: SECONDS });
    const saturated = await phase(writers, sources, readers, conversations, { rate: 0, window: WINDOW, seconds: SECONDS });
    if (closed.length > 0) throw new Error(`${closed.length} sockets were closed by the server during the run (codes ${[...new Set(closed)].join(", ")})`);
    for (const socket of [...writers, ...readers.flat()]) socket.ws.close();
    return [summary(`${mode}, ${RATE}/s per writer`, fixed), summary(`${mode}, saturation (window ${WINDOW})`, saturated)];
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end();
    await rm(base, { recursive: true, force: true });
  }
}

console.log(
  `${CONVERSATIONS} conversations, 1 writer + ${READERS} readers each; writers on node A, readers on node B ` +
    `(one node: both on A); ${SECONDS} s per phase; Postgres store in both runs`,
);
const rows = [...(await run("one node")), ...(await run("two nodes"))];
console.table(rows);
process.exit(0);
