// Several real `parley serve` processes sharing Postgres (a fresh schema per cluster) and Redis (a
// channel prefix per cluster, so parallel runs never cross), with shared keys, a TCP load
// balancer in front of them, and helpers to kill a node or its Redis connections.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import type { Role } from "../../protocol/index.ts";
import { loadOrCreateKeys, type ServerKeys } from "../../server/crypto/keys.ts";
import { loadMasterKeys, readKeyring } from "../../server/crypto/master-key.ts";
import { openPostgresStore, type PostgresStore } from "../../server/store/postgres/postgres-store.ts";
import { type ChildServer, childToken, startChildServer } from "./child-server.ts";
import { scrape, seriesValue } from "./metrics-scrape.ts";
import { TcpProxy } from "./tcp-proxy.ts";
import { waitUntil } from "./wait.ts";

/** One node of a test cluster. */
export interface ClusterNode {
  readonly name: string;
  readonly dataDir: string;
  /** The running process (replaced by {@link Cluster.restart}). */
  server: ChildServer;
  /** ws://127.0.0.1:<port>/ws of this node directly. */
  readonly url: string;
  readonly httpUrl: string;
  /** The node's log lines at warn level and above (for diagnostics). */
  readonly warnings: string[];
}

/** A running test cluster. */
export interface Cluster {
  readonly nodes: ClusterNode[];
  /** Redis channel prefix and node-id prefix of this cluster. */
  readonly id: string;
  readonly schema: string;
  readonly keys: ServerKeys;
  /** Spreads new connections over the live nodes: ws://127.0.0.1:<port>/ws. */
  readonly balancer: TcpProxy;
  readonly balancerUrl: string;
  token(user: string, org: string, conversations: Record<string, Role>): Promise<string>;
  /** A store on the cluster's schema, for audit checks (closed by cleanup). */
  store(): Promise<PostgresStore>;
  /**
   * Once the writes a test made are acknowledged: resolves when no live node is compacting (every
   * snapshot entry committed), with the conversation's head.
   */
  settled(conversation: string): Promise<number>;
  /** Kills this cluster's Redis connections whose name matches (e.g. ":sub", ":pub", or "" for all); returns how many. */
  killRedisConnections(match?: string, nodeName?: string): Promise<number>;
  /** How many nodes have subscribed to a conversation's Redis channel. */
  subscribers(conversation: string): Promise<number>;
  /** SIGKILLs a node and waits for it to exit; the balancer skips it from then on. */
  kill(name: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** What a test cluster runs on. */
export interface ClusterServices {
  databaseUrl: string;
  redisUrl: string;
}

/** A connection string whose sessions use `schema` (created here) as their search_path. */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("options", `-c search_path=${schema}`);
  return parsed.toString();
}

/**
 * Starts `count` nodes named a, b, c… . `env` adds settings for every node, `redisUrlFor` and
 * `nodeDatabaseUrl` let a test put something (a proxy) between the nodes and Redis or Postgres.
 */
export async function startCluster(
  services: ClusterServices,
  options: {
    count: number;
    env?: Record<string, string>;
    redisUrlFor?: (name: string) => string;
    /** Where the nodes reach Postgres, when not directly (a proxy); the test's own connections stay direct. */
    nodeDatabaseUrl?: string;
  },
): Promise<Cluster> {
  const id = `t${randomBytes(5).toString("hex")}`;
  const schema = `parley_${id}`;
  const admin = new pg.Client({ connectionString: services.databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const redis = new Redis(services.redisUrl);
  const base = await mkdtemp(path.join(tmpdir(), `parley-cluster-${id}-`));
  // Every node must share the signing key (tokens) and the audit key (one hash chain).
  const keys = await loadOrCreateKeys(path.join(base, "shared", "keys"));
  // Written before the nodes start, so they do not race to generate different master keys.
  await (await loadMasterKeys({ value: null, file: null, keysDir: path.join(base, "shared", "keys") })).persist();
  const stores: PostgresStore[] = [];
  const nodes: ClusterNode[] = [];
  const balancer = await TcpProxy.start([]);
  const names = "abcdefgh".slice(0, options.count).split("");
  // settled() reads every node's /metrics; a test that sets its own token gets that one.
  const metricsToken = options.env?.PARLEY_METRICS_TOKEN ?? randomBytes(16).toString("hex");
  const envFor = (name: string): Record<string, string> => ({
    DATABASE_URL: withSearchPath(options.nodeDatabaseUrl ?? services.databaseUrl, schema),
    REDIS_URL: options.redisUrlFor?.(name) ?? services.redisUrl,
    PARLEY_REDIS_PREFIX: `parley-test:${id}:`,
    PARLEY_NODE_ID: `${id}-${name}`,
    PARLEY_KEYS_DIR: path.join(base, "shared", "keys"),
    PARLEY_MAX_FRAMES_PER_SECOND: "100000",
    ...options.env,
    PARLEY_METRICS_TOKEN: metricsToken,
  });
  const startNode = async (name: string): Promise<ClusterNode> => {
    const dataDir = path.join(base, name);
    const server = await startChildServer(dataDir, envFor(name));
    const warnings: string[] = [];
    server.process.stdout?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (/"level":(4|5|6)0/.test(line)) warnings.push(line);
    });
    const node = { name, dataDir, server, url: `ws://127.0.0.1:${server.port}/ws`, httpUrl: `http://127.0.0.1:${server.port}`, warnings };
    nodes.push(node);
    return node;
  };
  try {
    // One node first, so it runs the migrations; then the others together.
    await startNode(names[0]);
    await Promise.all(names.slice(1).map(startNode));
  } catch (error) {
    for (const node of nodes) node.server.process.kill("SIGKILL");
    throw error;
  }
  nodes.sort((x, y) => x.name.localeCompare(y.name));
  balancer.backends = nodes.map((n) => n.server.port);

  const cluster: Cluster = {
    nodes,
    id,
    schema,
    keys,
    balancer,
    balancerUrl: `ws://127.0.0.1:${balancer.port}/ws`,
    token: (user, org, conversations) => childToken(path.join(base, "shared"), user, org, conversations),
    async store() {
      const store = await openPostgresStore({ connectionString: services.databaseUrl, auditKey: keys.auditKey,
        masterKeys: readKeyring(path.join(base, "shared", "keys")),
        schema,
        poolSize: 2,
      });
      stores.push(store);
      return store;
    },
    async settled(conversation) {
      // A compaction starts before the write that made it due is acknowledged (WritePath), so
      // with every write acknowledged, none in flight on any live node means none is coming.
      await waitUntil(
        async () => {
          for (const node of nodes) {
            if (node.server.process.exitCode !== null || node.server.process.signalCode !== null) continue;
            const { text } = await scrape(`${node.httpUrl}/metrics`, metricsToken);
            if (seriesValue(text, "parley_compactions_in_flight") !== 0) return false;
          }
          return true;
        },
        { what: "no node compacting" },
      );
      const store = await cluster.store();
      return (await store.loadDocument(conversation)).headSeq;
    },
    async killRedisConnections(match = "", nodeName) {
      const list = (await redis.client("LIST")) as string;
      const prefix = `name=parley:${id}-${nodeName ?? ""}`;
      const ids: string[] = [];
      for (const line of list.split("\n")) {
        const name = / (name=\S*)/.exec(line)?.[1] ?? "";
        if (name.startsWith(prefix) && name.includes(match)) ids.push(/\bid=(\d+)/.exec(line)?.[1] ?? "");
      }
      for (const clientId of ids) await redis.client("KILL", "ID", clientId).catch(() => {});
      return ids.length;
    },
    async subscribers(conversation) {
      const reply = (await redis.pubsub("NUMSUB", `parley-test:${id}:c:${conversation}`)) as [string, number];
      return Number(reply[1]);
    },
    async kill(name) {
      const node = nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node ${name}`);
      balancer.backends = balancer.backends.filter((port) => port !== node.server.port);
      node.server.process.kill("SIGKILL");
      await node.server.exited;
    },
    async cleanup() {
      await balancer.close();
      for (const node of nodes) {
        if (node.server.process.exitCode === null && node.server.process.signalCode === null) {
          node.server.process.kill("SIGTERM");
          await Promise.race([node.server.exited, new Promise((r) => setTimeout(r, 5000))]);
          node.server.process.kill("SIGKILL");
        }
      }
      await Promise.all(stores.map((s) => s.close().catch(() => {})));
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
      await redis.quit().catch(() => {});
      await rm(base, { recursive: true, force: true });
    },
  };
  return cluster;
}
