// Measures the store's hot path on its own: how many audited appends per second a store commits
// (hash chain, durable commit per batch), SQLite (worker thread, local file) or Postgres (pool),
// with no Parley network in the way.
// Usage: node --import tsx bench/store-append.ts [--backend sqlite|postgres] [--count 20000]
//        [--batch 50] [--size 100] [--conversations 1] [--inflight 1] [--synchronous full|normal]
//        [--database-url postgres://...] (Postgres: works in a random schema, dropped afterwards)
//        [--pin] (SQLite: each commit's heads pinned in acked-heads.journal before the next, as the
//        server does before acknowledging; store/acknowledged-heads.ts)

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { masterKey } from "../server/crypto/master-key.ts";
import { AcknowledgedHeads } from "../server/store/acknowledged-heads.ts";
import { openPostgresStore } from "../server/store/postgres/postgres-store.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { AppendRequest, Store } from "../server/store/store.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "20000" },
    batch: { type: "string", default: "50" },
    size: { type: "string", default: "100" },
    conversations: { type: "string", default: "1" },
    // Batches handed to the store before waiting for the first; 1 = strictly one commit at a time.
    inflight: { type: "string", default: "1" },
    synchronous: { type: "string", default: "full" },
    backend: { type: "string", default: "sqlite" },
    "database-url": { type: "string", default: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" },
    "pool-size": { type: "string", default: "10" },
    pin: { type: "boolean", default: false },
  },
});
const count = Number(values.count);
const batchSize = Number(values.batch);
const size = Number(values.size);
const conversations = Number(values.conversations);
const inflight = Number(values.inflight);
const synchronous = values.synchronous === "normal" ? "normal" : "full";
const backend = values.backend === "postgres" ? "postgres" : "sqlite";
const auditKey = new Uint8Array(32).fill(1);
const masterKeys = { keys: [masterKey(new Uint8Array(32).fill(2))] };

/** Opens the store under test in a place of its own; `dispose` closes it and removes that place. */
async function openBench(): Promise<{ store: Store; pins: AcknowledgedHeads | null; dispose: () => Promise<void> }> {
  if (backend === "postgres") {
    const connectionString = values["database-url"];
    const schema = `parley_bench_${randomBytes(6).toString("hex")}`;
    const store = await openPostgresStore({ connectionString, auditKey, masterKeys, schema, poolSize: Number(values["pool-size"]) });
    return {
      store,
      pins: null,
      dispose: async () => {
        await store.close();
        const client = new pg.Client({ connectionString });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), "parley-bench-store-"));
  const store = await openSqliteStore({ path: join(dir, "bench.db"), auditKey, masterKeys, synchronous });
  const pins = values.pin
    ? new AcknowledgedHeads({
        dataDir: dir,
        store,
        now: Date.now,
        onError: (error) => {
          throw error;
        },
      })
    : null;
  await pins?.start();
  return {
    store,
    pins,
    dispose: async () => {
      await pins?.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const { store, pins, dispose } = await openBench();
try {
  const batches: AppendRequest[][] = [];
  for (let i = 0; i < count; i += batchSize) {
    batches.push(
      Array.from({ length: Math.min(batchSize, count - i) }, (_, j) => ({
        conversation: `conv-${(i + j) % conversations}`,
        kind: "update" as const,
        actor: { user: `user-${j % 7}`, org: "org-bench", session: `sess-${j % 13}` },
        payload: new Uint8Array(size).fill((i + j) & 0xff),
      })),
    );
  }
  await store.appendBatch(batches[0].slice(0, 1).map((r) => ({ ...r, conversation: "warm-up" })));

  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const lane = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      const t = performance.now();
      const committed = await store.appendBatch(batch);
      await pins?.pinCommitted(committed);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const seconds = (performance.now() - started) / 1000;
  // CPU of the whole process (the store's worker thread included): unlike the wall clock, it does
  // not move much when other work shares the machine.
  const cpu = process.cpuUsage(cpuBefore);

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
  console.log(
    JSON.stringify({
      backend,
      ...(backend === "sqlite" ? { synchronous, pin: values.pin } : {}),
      count,
      batch: batchSize,
      size,
      conversations,
      inflight,
      seconds: Number(seconds.toFixed(3)),
      appendsPerSecond: Math.round(count / seconds),
      commitsPerSecond: Math.round(batches.length / seconds),
      cpuMicrosPerAppend: Number(((cpu.user + cpu.system) / count).toFixed(1)),
      batchMs: { p50: pct(0.5), p99: pct(0.99), max: pct(1) },
    }),
  );
} finally {
  await dispose();
}
