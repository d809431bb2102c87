// Two real Parley nodes on one fresh Postgres schema with scheduled backups into one shared folder
// (a shared volume) and one test clock: what the scheduled Postgres backup and drill tests share.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { BackupScheduler } from "../../server/backup/backup-scheduler.ts";
import { startTestServer, type TestServer } from "./server.ts";

export interface BackupCluster {
  /** A connection to the test database outside the schema (for checks and clean-up). */
  admin: pg.Client;
  schema: string;
  /** DATABASE_URL of the nodes (search_path: the schema). */
  databaseUrl: string;
  /** A private folder: the keys, the backup folder. */
  work: string;
  backupDir: string;
  keysDir: string;
  nodes: TestServer[];
  scheduler(node: TestServer): BackupScheduler;
  /** Every node's timer firing at the same moment. */
  tickAll(): Promise<void>;
  /** Stops the nodes, drops the schema, removes the folder. */
  cleanup(): Promise<void>;
}

/** Creates `schema`, starts two nodes on it (the first creates the tables and keys the second uses) with `env` added. */
export async function startBackupCluster(baseUrl: string, schema: string, now: () => number, env: Record<string, string>): Promise<BackupCluster> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const url = new URL(baseUrl);
  url.searchParams.set("options", `-c search_path=${schema}`);
  const databaseUrl = url.toString();
  const work = await mkdtemp(path.join(tmpdir(), "parley-backup-cluster-"));
  const backupDir = path.join(work, "backups");
  const keysDir = path.join(work, "keys"); // one cluster, one set of keys
  const common = { DATABASE_URL: databaseUrl, PARLEY_KEYS_DIR: keysDir, PARLEY_BACKUP_DIR: backupDir, PARLEY_BACKUP_EVERY_MINUTES: "1440", ...env };
  const nodes: TestServer[] = [];
  const cleanup = async () => {
    for (const node of nodes.splice(0)) await node.cleanup();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  };
  try {
    for (const name of ["a", "b"]) nodes.push(await startTestServer({ now, env: { ...common, PARLEY_NODE_ID: `${schema}-${name}` } }));
  } catch (error) {
    await cleanup();
    throw error;
  }
  const scheduler = (node: TestServer) => {
    const backups = node.server.backups;
    if (!backups) throw new Error("no backup scheduler");
    return backups;
  };
  return {
    admin,
    schema,
    databaseUrl,
    work,
    backupDir,
    keysDir,
    nodes,
    scheduler,
    tickAll: async () => {
      await Promise.all(nodes.map((node) => scheduler(node).tick()));
    },
    cleanup,
  };
}
