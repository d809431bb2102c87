// Parley on shared services for the cluster scenario: `parley serve` processes on one Postgres (a
// fresh schema per run, through the connection's search_path) and one Redis (a channel prefix per
// run, so parallel runs never cross). Every node reads the run's shared keys (PARLEY_KEYS_DIR),
// so the suite's tokens are valid on all of them.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { ONE_ADDRESS_FOR_ALL_CLIENTS } from "./bench-limits.ts";
import { freePort } from "./free-port.ts";
import { launchServer } from "./launch.ts";
import { ensureParleyBuild, parleyEntry } from "./parley-build.ts";
import { PARLEY_PRELOAD, parleyKeysDir, REPO_ROOT, type ServerUnderTest } from "./registry.ts";

/** Where the cluster's services are (BENCH_DATABASE_URL / BENCH_REDIS_URL, else the local defaults). */
export interface ClusterServices {
  databaseUrl: string;
  redisUrl: string;
}

export function clusterServices(): ClusterServices {
  return {
    databaseUrl: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    redisUrl: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
  };
}

const PROBE_TIMEOUT_MS = 2000;

/** Why the services cannot be used (to skip the scenario with a reason), or undefined. */
export async function servicesUnavailable(services: ClusterServices): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: services.databaseUrl, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (error) {
    return `Postgres is not reachable (${(error as Error).message}); set BENCH_DATABASE_URL`;
  } finally {
    await client.end().catch(() => {});
  }
  const redis = new Redis(services.redisUrl, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    return `Redis is not reachable (${(error as Error).message}); set BENCH_REDIS_URL`;
  } finally {
    redis.disconnect();
  }
  return undefined;
}

/** A cluster that grows one node at a time; stop() ends every node and drops the run's schema. */
export interface ParleyCluster {
  readonly nodes: ServerUnderTest[];
  addNode(): Promise<ServerUnderTest>;
  /** Redis and Postgres operation counters now (diff two readings for a window). */
  counters(): Promise<ServiceCounters>;
  stop(): Promise<void>;
}

/**
 * What the shared services did, as cumulative counters. Redis's are server-wide (other users of
 * the same Redis count too: take a baseline over an idle window); Postgres's transactions are
 * database-wide (likewise), its row and index counters are the run's own schema only.
 */
export interface ServiceCounters {
  /** Calls by Redis command (INFO commandstats). */
  redis: Record<string, number>;
  /** Database-wide committed transactions (pg_stat_database.xact_commit). */
  pgCommits: number;
  /** The run's schema: rows inserted, rows updated, index scans, sequential scans. */
  pgRowsInserted: number;
  pgRowsUpdated: number;
  pgIndexScans: number;
  pgSeqScans: number;
  /** Parley's own counters summed over the nodes (GET /metrics): group commits (= Postgres transactions for appends) and committed updates. */
  parleyCommits: number;
  parleyUpdates: number;
}

/** Counters after − counters before. */
export function counterDelta(after: ServiceCounters, before: ServiceCounters): ServiceCounters {
  const redis: Record<string, number> = {};
  for (const [command, calls] of Object.entries(after.redis)) {
    const delta = calls - (before.redis[command] ?? 0);
    if (delta > 0) redis[command] = delta;
  }
  return {
    redis,
    pgCommits: after.pgCommits - before.pgCommits,
    pgRowsInserted: after.pgRowsInserted - before.pgRowsInserted,
    pgRowsUpdated: after.pgRowsUpdated - before.pgRowsUpdated,
    pgIndexScans: after.pgIndexScans - before.pgIndexScans,
    pgSeqScans: after.pgSeqScans - before.pgSeqScans,
    parleyCommits: after.parleyCommits - before.parleyCommits,
    parleyUpdates: after.parleyUpdates - before.parleyUpdates,
  };
}

/** The benchmark's own token for the nodes' GET /metrics (a random one per run). */
const METRICS_TOKEN = randomBytes(18).toString("base64url");

/** A Prometheus counter's value (summed over its label sets) from a /metrics text. */
function counterValue(text: string, name: string): number {
  let sum = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "gm"))) sum += Number(match[1]);
  return sum;
}

async function parleyCounters(nodes: readonly ServerUnderTest[]): Promise<{ commits: number; updates: number }> {
  let commits = 0;
  let updates = 0;
  for (const node of nodes) {
    const response = await fetch(`http://127.0.0.1:${node.port}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    const text = await response.text();
    commits += counterValue(text, "parley_commits_total");
    updates += counterValue(text, "parley_committed_updates_total");
  }
  return { commits, updates };
}

async function readCounters(redis: Redis, admin: pg.Client, schema: string, nodes: readonly ServerUnderTest[]): Promise<ServiceCounters> {
  const parley = await parleyCounters(nodes);
  const stats = await redis.info("commandstats");
  const calls: Record<string, number> = {};
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]] = Number(match[2]);
  const db = await admin.query<{ xact_commit: string }>("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
  const tables = await admin.query<{ ins: string | null; upd: string | null; idx: string | null; seq: string | null }>(
    "SELECT SUM(n_tup_ins) AS ins, SUM(n_tup_upd) AS upd, SUM(COALESCE(idx_scan, 0)) AS idx, SUM(seq_scan) AS seq FROM pg_stat_user_tables WHERE schemaname = $1",
    [schema],
  );
  const t = tables.rows[0];
  return {
    redis: calls,
    pgCommits: Number(db.rows[0]?.xact_commit ?? 0),
    pgRowsInserted: Number(t?.ins ?? 0),
    pgRowsUpdated: Number(t?.upd ?? 0),
    pgIndexScans: Number(t?.idx ?? 0),
    pgSeqScans: Number(t?.seq ?? 0),
    parleyCommits: parley.commits,
    parleyUpdates: parley.updates,
  };
}

function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("options", `-c search_path=${schema}`);
  return parsed.toString();
}

/**
 * Prepares a cluster with no node yet: a fresh schema, a Redis prefix and a data directory per
 * node. Every node is configured as a cluster member (Postgres + Redis) from the start, so a
 * one-node measurement before the second node joins differs from the two-node one only in the
 * node count. The first node runs the migrations.
 */
export async function openParleyCluster(services: ClusterServices, niceness = 0): Promise<ParleyCluster> {
  const id = `b${randomBytes(5).toString("hex")}`;
  const schema = `parley_bench_${id}`;
  const admin = new pg.Client({ connectionString: services.databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const base = await mkdtemp(join(tmpdir(), `parley-bench-cluster-${id}-`));
  const keysDir = await parleyKeysDir();
  const nodes: ServerUnderTest[] = [];
  const redis = new Redis(services.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  await redis.connect();
  return {
    nodes,
    async counters() {
      // Statistics reach pg_stat_* when a backend reports them: ask for a fresh snapshot.
      await admin.query("SELECT pg_stat_clear_snapshot()");
      return readCounters(redis, admin, schema, nodes);
    },
    async addNode() {
      await ensureParleyBuild(REPO_ROOT);
      const name = "abcdefgh"[nodes.length];
      const running = await launchServer({
        name: `parley-${name}`,
        nodeArgs: [...PARLEY_PRELOAD, ...parleyEntry(REPO_ROOT), "serve"],
        env: {
          HOST: "127.0.0.1",
          PORT: String(await freePort()),
          PARLEY_DATA_DIR: join(base, name),
          PARLEY_KEYS_DIR: keysDir,
          DATABASE_URL: withSearchPath(services.databaseUrl, schema),
          REDIS_URL: services.redisUrl,
          PARLEY_REDIS_PREFIX: `parley-bench:${id}:`,
          PARLEY_NODE_ID: `${id}-${name}`,
          // Only so the bench can read the nodes' commit counters; changes nothing else.
          PARLEY_METRICS_TOKEN: METRICS_TOKEN,
          ...ONE_ADDRESS_FOR_ALL_CLIENTS,
        },
        cwd: REPO_ROOT,
        niceness,
      });
      const node: ServerUnderTest = { ...running, name: "parley" };
      nodes.push(node);
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
      redis.disconnect();
      await rm(base, { recursive: true, force: true });
    },
  };
}
