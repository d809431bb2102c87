// CPU per committed update of the write path on its own, in-process: validation against the
// document rules, the group commit into a real SQLite store (worker thread, synchronous=FULL,
// encrypted, audited) and the cache's part of the fan-out, with no network in the way. Reports
// CPU time (all threads, from the process), not wall time, so it stays comparable on a busy
// machine (a descheduled thread uses no CPU); the main thread's share is read from
// /proc/self/task/<pid>/stat (Linux, 10 ms ticks). `--root` runs another checkout's sources (e.g. an older commit, to compare).
// A short run is mostly JIT warm-up on V8's helper threads (concurrent compilation: 13 of 15 µs
// per update of theirs went away with --no-concurrent-recompilation), so `--warmup` rounds run
// unmeasured first (0 gives the figures of the runs before that option).
// Usage: node --import tsx bench/write-path.ts [--conversations 50] [--writers 10] [--rounds 40] [--warmup 40] [--root DIR]

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as Y from "yjs";
import { threadCpuSeconds as threadCpuSecondsById } from "./measure/proc.ts";

const { values } = parseArgs({
  options: {
    conversations: { type: "string", default: "50" },
    writers: { type: "string", default: "10" },
    rounds: { type: "string", default: "40" },
    warmup: { type: "string", default: "40" },
    root: { type: "string", default: resolve(import.meta.dirname, "..") },
  },
});
const conversations = Number(values.conversations);
const writersPer = Number(values.writers);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
const root = resolve(values.root);

/** The first of `candidates` (paths under root; modules moved between folders over time) that loads. */
async function load<T>(...candidates: string[]): Promise<T> {
  for (const candidate of candidates) {
    try {
      return (await import(pathToFileURL(join(root, candidate)).href)) as T;
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error;
    }
  }
  throw new Error(`none of ${candidates.join(", ")} under ${root}`);
}

type AnyClass = new (...args: never[]) => unknown;
const { openSqliteStore } = await load<{ openSqliteStore: (o: object) => Promise<{ close(): Promise<void> }> }>("server/store/sqlite/sqlite-store.ts");
const { masterKey } = await load<{ masterKey: (k: Uint8Array) => unknown }>("server/crypto/master-key.ts", "server/auth/master-key.ts");
const { GroupCommitter } = await load<{ GroupCommitter: AnyClass }>("server/writes/group-committer.ts", "server/log/group-committer.ts");
const { WritePath } = await load<{ WritePath: AnyClass }>("server/writes/write-path.ts", "server/log/write-path.ts");
const { DocumentCache } = await load<{ DocumentCache: AnyClass }>("server/documents/document-cache.ts", "server/realtime/document-cache.ts");
const { default: pino } = await import("pino");

interface Cache {
  committed(conversation: string, update: Uint8Array, seq: number, recordedIn?: object): void;
}
interface Writes {
  submit(conversation: string, update: Uint8Array, actor: object, options?: object): Promise<number>;
}

const dir = await mkdtemp(join(tmpdir(), "parley-write-path-"));
// Threads are told apart by when they started (Node names them all "node"): the ones running
// before the store opens are the main thread and V8's and libuv's helpers (GC, JIT, fs); the
// ones that start while it opens are the store's worker.
const threadsBeforeStore = new Set(threadCpuSecondsById().keys());
const store = await openSqliteStore({ path: join(dir, "parley.db"), auditKey: new Uint8Array(32).fill(1), masterKeys: { keys: [masterKey(new Uint8Array(32).fill(2))] } });
const committer = new GroupCommitter(store as never, { maxBatch: 1024, windowMs: 0 } as never);
const cache = new DocumentCache(store as never, 256 * 1024 * 1024 as never) as unknown as Cache;
// The cache's part of the fan-out, as CommitFanOut.deliverLocally does it (publishing is uWS's).
const fanOut = {
  committedUpdate(conversation: string, update: Uint8Array, seq: number, local?: unknown) {
    const recordedIn = local && typeof local === "object" && "recordedIn" in local ? (local as { recordedIn?: object }).recordedIn : undefined;
    cache.committed(conversation, update, seq, recordedIn);
  },
};
const writePath = new WritePath({
  store,
  committer,
  cache,
  fanOut,
  logger: pino({ level: "silent" }),
  maxUpdateBytes: 1024 * 1024,
  documentLimits: { maxDepth: 64, maxItems: 10_000_000, maxBytes: 64 * 1024 * 1024 },
  compactAfterUpdates: 1000,
} as never) as unknown as Writes;

// Every writer's updates built before the clock: 30-90 characters inserted into the notes.
const writers: { conversation: string; actor: object; updates: Uint8Array[] }[] = [];
for (let c = 0; c < conversations; c++) {
  for (let w = 0; w < writersPer; w++) {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on("update", (u: Uint8Array) => updates.push(u));
    for (let r = 0; r < warmup + rounds + 1; r++) doc.getText("notes").insert(0, "x".repeat(30 + ((r * 7 + w) % 60)));
    writers.push({ conversation: `cnv_${String(c).padStart(32, "0")}`, actor: { user: `usr_bench${w}`, org: "org_bench", session: `s${c}_${w}` }, updates });
  }
}

// Round 0 loads the conversations, the warm-up rounds let the JIT settle; the measured rounds follow, each one update
// per writer, all of a round in flight at once (one group commit or a few).
for (let r = 0; r <= warmup; r++) await Promise.all(writers.map((w) => writePath.submit(w.conversation, w.updates[r], w.actor)));
/** CPU seconds each thread used so far: main, the store worker, V8's and libuv's helpers (each kind summed). */
function threadCpuSeconds(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const [tid, { name, seconds }] of threadCpuSecondsById()) {
    const kind = name === "main" ? "main" : threadsBeforeStore.has(tid) ? "helpers (GC, JIT, libuv)" : "store worker";
    byName.set(kind, (byName.get(kind) ?? 0) + seconds);
  }
  return byName;
}
const mainThreadCpuSeconds = () => threadCpuSeconds().get("main") ?? 0;
const threadsBefore = threadCpuSeconds();
const cpu = process.cpuUsage();
const mainCpu = mainThreadCpuSeconds();
const started = performance.now();
for (let r = warmup + 1; r <= warmup + rounds; r++) await Promise.all(writers.map((w) => writePath.submit(w.conversation, w.updates[r], w.actor)));
const wallMs = performance.now() - started;
const used = process.cpuUsage(cpu);
const mainSeconds = mainThreadCpuSeconds() - mainCpu;
const updates = rounds * writers.length;
const totalUs = (used.user + used.system) / updates;
const mainUs = (mainSeconds * 1e6) / updates;
console.log(
  `${root}: ${updates} updates in ${(wallMs / 1000).toFixed(1)} s wall; CPU per committed update ${totalUs.toFixed(1)} µs ` +
    `(main thread ≈ ${mainUs.toFixed(1)} µs, store worker and the rest ≈ ${(totalUs - mainUs).toFixed(1)} µs)`,
);
const threads = [...threadCpuSeconds()].map(([name, seconds]) => [name, seconds - (threadsBefore.get(name) ?? 0)] as const).filter(([, s]) => s > 0);
console.log(`  by thread (µs per update): ${threads.map(([name, seconds]) => `${name} ${((seconds * 1e6) / updates).toFixed(1)}`).join(", ")}`);
await store.close();
await rm(dir, { recursive: true, force: true });
