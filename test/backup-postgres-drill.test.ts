// Scheduled restore drills and keyring retention of a Postgres deployment: two real server nodes
// on one fresh schema, one shared backup folder, one test clock, real pg_dump / psql. After every
// second backup of the cluster exactly one node restores the newest pair into a scratch database,
// opens it (documents applied, conversation and organisation chains verified, row counts against
// the manifests) and drops it, pass or fail; a truncated newest backup fails the drill, which is
// reported like the embedded drill (system audit chain, /readyz, metrics, a security notice).
// Keyring files are deleted after PARLEY_BACKUP_KEEP_KEYRING_DAYS while their data files stay,
// restoring such a data file with its own keyring says why it cannot be done, and the drill then
// also restores the oldest such data file with the newest keyring.

import { createHash, randomBytes } from "node:crypto";
import { copyFile, readdir, stat, truncate, unlink } from "node:fs/promises";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_AUDIT_CHAIN } from "../server/app.ts";
import { backupMasterKeys } from "../server/backup/backup-keys.ts";
import { readPostgresBackup, sealPostgresBackup } from "../server/backup/postgres-backup.ts";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { type BackupCluster, startBackupCluster } from "./helpers/backup-cluster.ts";
import type { TestServer } from "./helpers/server.ts";
import { requirePostgresTools } from "./helpers/services.ts";
import { seedConversation } from "./helpers/seed-conversation.ts";
import { type SignedUp, signIn, signUp } from "./helpers/sign-up.ts";

const baseUrl = await requirePostgresTools("scheduled Postgres restore drills");
const enabled = Boolean(baseUrl);

const DAY = 86_400_000;
const SCHEMA = `parley_pgdrill_${randomBytes(5).toString("hex")}`;
const KEEP_KEYRING_DAYS = 2;
const OWNER_EMAIL = "owner@pgdrill.example";
/** The scheduled backup file name for a time (as the scheduler names them). */
const nameAt = (at: number) => `parley-${new Date(at).toISOString().replaceAll(":", "-").replace(".", "-")}.pbk`;
const timeOf = (name: string) => {
  const [date, time] = (/^parley-(.+)\.pbk$/.exec(name)?.[1] ?? "").split("T");
  const [h, m, s, ms] = (time ?? "").replace("Z", "").split("-");
  return Date.parse(`${date}T${h}:${m}:${s}.${ms}Z`);
};

describe.runIf(enabled)("scheduled Postgres restore drills on a two-node cluster", () => {
  let clock = Date.UTC(2026, 10, 2, 3, 0, 0);
  let cluster: BackupCluster;
  let admin: pg.Client;
  let backupDir: string;
  let nodes: TestServer[] = [];
  let owner: SignedUp;
  /** The conversation every backup after the first holds (destroyed before the last drills). */
  let pump: string;
  /** The scratch databases of this deployment's drills start with this (the drill's naming). */
  let scratchPrefix: string;

  beforeAll(async () => {
    cluster = await startBackupCluster(baseUrl as string, SCHEMA, () => clock, {
      PARLEY_BACKUP_KEEP_DAILY: "30",
      PARLEY_BACKUP_KEEP_WEEKLY: "0",
      PARLEY_BACKUP_KEEP_MONTHLY: "0",
      PARLEY_BACKUP_DRILL_EVERY: "2",
      PARLEY_BACKUP_KEEP_KEYRING_DAYS: String(KEEP_KEYRING_DAYS),
    });
    ({ admin, backupDir, nodes } = cluster);
    const database = decodeURIComponent(new URL(cluster.databaseUrl).pathname.slice(1));
    scratchPrefix = `parley_drill_${createHash("sha256").update(`${database}\0${SCHEMA}`).digest("hex").slice(0, 10)}_`;
    const api = apiClient(nodes[0]?.httpUrl as string);
    owner = await signUp(api, OWNER_EMAIL, "Drill BV");
    pump = await seedConversation(api, owner.token, "Pump", ["first", "second", "third"]);
  });
  afterAll(async () => {
    for (const name of admin ? await scratchDatabases() : []) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await cluster?.cleanup();
  });

  const scheduler = (node: TestServer) => cluster.scheduler(node);
  const tickAll = () => cluster.tickAll();
  const sum = (of: (totals: { backups: number; drills: number; drillFailures: number }) => number) => nodes.reduce((n, node) => n + of(scheduler(node).totals), 0);
  const systemChain = async () => (await nodes[0]?.server.audit.log.readOrgAuditEntries(SYSTEM_AUDIT_CHAIN, 0, 100))?.map((e) => e.action) ?? [];
  async function scratchDatabases(): Promise<string[]> {
    const rows = await admin.query<{ name: string }>("SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1)", [scratchPrefix]);
    return rows.rows.map((r) => r.name);
  }
  const drillMetric = async (outcome: "ok" | "failed") => {
    let total = 0;
    for (const node of nodes) {
      const text = await node.server.metrics.registry.getSingleMetricAsString("parley_scheduled_backups_total");
      total += Number(new RegExp(`kind="drill",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    }
    return total;
  };

  it("drills the cluster's every second backup on exactly one node, opening and verifying the restored copy, and drops its scratch database", async () => {
    await tickAll(); // the start-up ticks took the first backup
    expect(sum((t) => t.backups)).toBe(1);
    expect(sum((t) => t.drills)).toBe(0);
    // A drill killed before its cleanup left a scratch database: the next drill removes it.
    await admin.query(`CREATE DATABASE "${scratchPrefix}killed"`);

    clock += DAY;
    await tickAll();
    await tickAll();
    expect(sum((t) => t.backups)).toBe(2);
    expect(sum((t) => t.drills)).toBe(1);
    const drilled = nodes.filter((node) => scheduler(node).latest.drill !== null);
    expect(drilled).toHaveLength(1);
    const drill = scheduler(drilled[0] as TestServer).latest.drill;
    if (!drill?.ok) throw new Error(`drill failed: ${drill?.error}`);
    // The newest pair: the backup this node just took.
    expect(drill.file).toBe(scheduler(drilled[0] as TestServer).latest.backup?.file);
    expect(drill.documentsOpened).toBe(1);
    // The conversation's chain and the organisation chains the backup holds (parley-system's, with
    // the first backup's entry, and the owner's organisation's, from its sign-up).
    expect(drill.chainsVerified).toBe(3);
    expect(drill.counts?.entries).toBeGreaterThanOrEqual(3);
    expect(drill.counts?.data_keys).toBeGreaterThanOrEqual(1);
    expect(await scratchDatabases()).toEqual([]);

    const ready = (await (await fetch(`${drilled[0]?.httpUrl}/readyz`)).json()) as { backups: { drill: { ok: boolean }; totals: Record<string, number> } };
    expect(ready.backups.drill.ok).toBe(true);
    expect(ready.backups.totals).toMatchObject({ drills: 1, drillFailures: 0 });
    expect(await systemChain()).toEqual(["backup.verified", "backup.verified", "drill.passed"]);
    expect(await drillMetric("ok")).toBe(1);

    // The next backup is the first of the next pair: no drill.
    clock += DAY;
    await tickAll();
    expect(sum((t) => t.backups)).toBe(3);
    expect(sum((t) => t.drills)).toBe(1);
  });

  it("fails the drill of a truncated newest backup: audit chain, /readyz, metrics and a security notice, the scratch database dropped", async () => {
    // A damaged pair on the shared volume, newer than any the cluster took.
    const names = (await readdir(backupDir)).filter((n) => /Z\.pbk$/.test(n)).sort();
    const source = path.join(backupDir, names.at(-1) as string);
    const planted = path.join(backupDir, nameAt(clock + 10 * DAY));
    await copyFile(source, planted);
    await copyFile(source.replace(/\.pbk$/, ".keyring.pbk"), planted.replace(/\.pbk$/, ".keyring.pbk"));
    await truncate(planted, Math.floor((await stat(planted)).size / 2));
    try {
      clock += DAY;
      await tickAll();
      expect(sum((t) => t.backups)).toBe(4);
      expect(sum((t) => t.drills)).toBe(2);
      const failed = nodes.filter((node) => scheduler(node).latest.drill?.ok === false);
      expect(failed).toHaveLength(1);
      const drill = scheduler(failed[0] as TestServer).latest.drill;
      expect(drill?.file).toBe(planted);
      expect(drill?.error).toMatch(/truncated|ends|too short|checksum/i);
      expect(await scratchDatabases()).toEqual([]);

      const ready = (await (await fetch(`${failed[0]?.httpUrl}/readyz`)).json()) as { status: string; backups: { drill: { ok: boolean; error: string } } };
      expect(ready.status).toBe("ready"); // the node still serves; the detail says what is wrong
      expect(ready.backups.drill.ok).toBe(false);
      expect((await systemChain()).slice(-2)).toEqual(["backup.verified", "drill.failed"]);
      expect(await drillMetric("failed")).toBe(1);
      // Days on the cluster's clock: the owner's sign-up token has expired by now.
      const api = apiClient(nodes[0]?.httpUrl as string);
      const listed = await api("GET", `/v1/organisations/${owner.orgId}/security-notices`, { token: await signIn(api, OWNER_EMAIL) });
      expect((listed.body.items as { data: { notice: string } }[]).map((n) => n.data.notice)).toContain("backup.drill-failed");
    } finally {
      await unlink(planted).catch(() => undefined);
      await unlink(planted.replace(/\.pbk$/, ".keyring.pbk")).catch(() => undefined);
    }
  });

  it("fails the drill of a backup whose data breaks an audit chain (an entry edited in the database): the file verifies, the restored chain does not", async () => {
    const entries = `"${SCHEMA}".entries`;
    await admin.query(`UPDATE ${entries} SET at = at + 1 WHERE seq = 2`);
    try {
      for (let i = 0; i < 2; i++) {
        clock += DAY;
        await tickAll();
      }
    } finally {
      await admin.query(`UPDATE ${entries} SET at = at - 1 WHERE seq = 2`);
    }
    expect(sum((t) => t.backups)).toBe(6);
    expect(sum((t) => t.drills)).toBe(3);
    const failed = nodes.filter((node) => scheduler(node).latest.drill?.error?.includes("audit chain does not verify after the restore"));
    expect(failed).toHaveLength(1);
    const ran = scheduler(failed[0] as TestServer);
    expect(ran.latest.backup).toMatchObject({ ok: true }); // the backup itself read back whole
    expect(ran.latest.drill?.file).toBe(ran.latest.backup?.file);
    expect(ran.latest.drill?.error).toMatch(/seq 2/);
    expect((await systemChain()).at(-1)).toBe("drill.failed");
    expect(await drillMetric("failed")).toBe(2);
    expect(await scratchDatabases()).toEqual([]);
  });

  it("deletes keyring files after the keyring retention while their data files stay, and says why such a data file cannot be restored", async () => {
    const names = (await readdir(backupDir)).sort();
    const data = names.filter((n) => /Z\.pbk$/.test(n));
    expect(data).toHaveLength(6); // the rotation keeps 30 days: every backup taken
    const cutoff = clock - KEEP_KEYRING_DAYS * DAY;
    const withKeyring = data.filter((n) => names.includes(n.replace(/\.pbk$/, ".keyring.pbk")));
    expect(withKeyring).toEqual(data.filter((n) => timeOf(n) >= cutoff));
    expect(withKeyring.length).toBeGreaterThanOrEqual(1);
    const oldest = data[0] as string;
    expect(timeOf(oldest)).toBeLessThan(cutoff);
    const keyringsRemoved = nodes.flatMap((node) => scheduler(node).latest.backup?.keyringsRemoved ?? []);
    expect(keyringsRemoved.length).toBeGreaterThanOrEqual(1);

    // An operator restoring the old data file into a new database: refused, with the reason, nothing changed.
    const target = new URL(baseUrl as string);
    target.searchParams.set("options", `-c search_path=${SCHEMA}_restored`);
    const restore = await runParley(["restore", path.join(backupDir, oldest), "--keyring", path.join(backupDir, oldest.replace(/\.pbk$/, ".keyring.pbk"))], {
      DATABASE_URL: target.toString(),
      PARLEY_KEYS_DIR: cluster.keysDir,
      PARLEY_DATA_DIR: path.join(cluster.work, "restore-machine"),
    });
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toContain("is not there");
    expect(restore.stderr).toContain("this data backup cannot be decrypted or restored");
    expect(restore.stderr).toContain("PARLEY_BACKUP_KEEP_KEYRING_DAYS");
    const created = await admin.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [`${SCHEMA}_restored`]);
    expect(created.rowCount).toBe(0);

    // The next drill checks the oldest data file without its keyring too, with the newest keyring:
    // it restores and verifies. (The start-up backup, taken before anything was written, removed
    // first: the oldest is then one holding the conversation.)
    await unlink(path.join(backupDir, oldest));
    // Destroyed now: the newest keyring has no key for it, so the old data file restores without it.
    const api = apiClient(nodes[0]?.httpUrl as string);
    const deleted = await api("DELETE", `/v1/conversations/${pump}`, { token: await signIn(api, OWNER_EMAIL) });
    expect(deleted.body.destroyed).toBe(true);
    for (let i = 0; i < 2; i++) {
      clock += DAY;
      await tickAll();
    }
    expect(sum((t) => t.drills)).toBe(4);
    const drilled = nodes.map((node) => scheduler(node).latest.drill).filter((drill) => drill?.olderFile !== undefined);
    expect(drilled).toHaveLength(1);
    const drill = drilled[0];
    if (!drill?.ok) throw new Error(`drill failed: ${drill?.error}`);
    expect(drill.olderFile).toBe(path.join(backupDir, data[1] as string));
    // parley-system's and the organisation's chains; the destroyed conversation's is not there.
    expect(drill.olderChainsVerified).toBe(2);
    expect(await scratchDatabases()).toEqual([]);
  });

  it("keeps the keyring file of a backup made before backups named their deployment (only its own keyring opens it)", async () => {
    const masterKeys = await backupMasterKeys((nodes[0] as TestServer).server.config);
    const newest = (await readdir(backupDir)).filter((n) => /Z\.pbk$/.test(n)).sort().at(-1) as string;
    // The newest pair re-sealed without its deployment id, under the name of a backup about 5 days old (the newest of its day).
    const planted = path.join(backupDir, nameAt(clock - 5 * DAY + 3_600_000));
    for (const [from, to] of [
      [path.join(backupDir, newest), planted],
      [path.join(backupDir, newest.replace(/\.pbk$/, ".keyring.pbk")), planted.replace(/\.pbk$/, ".keyring.pbk")],
    ] as const) {
      const dump = path.join(cluster.work, `${path.basename(to)}.sql`);
      const { deploymentId: _dropped, ...manifest } = await readPostgresBackup(from, masterKeys, dump);
      await sealPostgresBackup(to, masterKeys[0] as Uint8Array, manifest, dump);
      await unlink(dump);
    }
    clock += DAY;
    await tickAll();
    const removed = nodes.flatMap((node) => scheduler(node).latest.backup?.keyringsRemoved ?? []);
    expect(removed).not.toContain(path.basename(planted.replace(/\.pbk$/, ".keyring.pbk")));
    expect((await readdir(backupDir)).includes(path.basename(planted.replace(/\.pbk$/, ".keyring.pbk")))).toBe(true);
  });
});
