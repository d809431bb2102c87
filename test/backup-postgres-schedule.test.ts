// Scheduled backups of a Postgres deployment (DATABASE_URL + PARLEY_BACKUP_DIR): two real server
// nodes on one fresh schema, one backup folder (a shared volume), one test clock. Each interval
// exactly one node takes the backup (a data + keyring pair, read back whole and checked to be one
// pair), the rotation keeps the configured count of pairs, a run another holder of the advisory
// lock blocks is skipped, and results reach the system audit chain, /readyz, the metrics and, on
// failure, a security notice: the embedded scheduler's reporting. A scheduled pair restores (`parley
// restore`'s path) into a fresh database.

import { randomBytes } from "node:crypto";
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_AUDIT_CHAIN } from "../server/app.ts";
import { backupMasterKeys } from "../server/backup/backup-keys.ts";
import { readPostgresBackupPair, restorePostgresBackup } from "../server/backup/postgres-backup.ts";
import { apiClient } from "./helpers/http-client.ts";
import { type BackupCluster, startBackupCluster } from "./helpers/backup-cluster.ts";
import type { TestServer } from "./helpers/server.ts";
import { requirePostgresTools } from "./helpers/services.ts";
import { seedConversation } from "./helpers/seed-conversation.ts";
import { type SignedUp, signIn, signUp } from "./helpers/sign-up.ts";

const baseUrl = await requirePostgresTools("scheduled Postgres backups");
const enabled = Boolean(baseUrl);

const DAY = 86_400_000;
const SCHEMA = `parley_pgsched_${randomBytes(5).toString("hex")}`;

describe.runIf(enabled)("scheduled Postgres backups on a two-node cluster", () => {
  let clock = Date.UTC(2026, 11, 1, 3, 0, 0);
  let cluster: BackupCluster;
  let admin: pg.Client;
  let work: string;
  let backupDir: string;
  let databaseUrl: string;
  let nodes: TestServer[] = [];
  let owner: SignedUp;

  beforeAll(async () => {
    cluster = await startBackupCluster(baseUrl as string, SCHEMA, () => clock, {
      PARLEY_BACKUP_KEEP_DAILY: "2",
      PARLEY_BACKUP_KEEP_WEEKLY: "0",
      PARLEY_BACKUP_KEEP_MONTHLY: "0",
    });
    ({ admin, work, backupDir, databaseUrl, nodes } = cluster);
    const api = apiClient(nodes[0]?.httpUrl as string);
    owner = await signUp(api, "owner@pgsched.example", "Schedule BV");
    await seedConversation(api, owner.token, "Boiler", ["first", "second"]);
  });
  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS "${SCHEMA}"`).catch(() => undefined);
    await cluster?.cleanup();
  });

  const scheduler = (node: TestServer) => cluster.scheduler(node);
  const tickAll = () => cluster.tickAll();
  const pairs = async () => {
    const names = (await readdir(backupDir)).sort();
    const data = names.filter((n) => /^parley-.*Z\.pbk$/.test(n));
    expect(names.filter((n) => n.endsWith(".keyring.pbk"))).toEqual(data.map((n) => n.replace(/\.pbk$/, ".keyring.pbk")));
    return data;
  };
  const totalBackups = () => nodes.reduce((sum, node) => sum + scheduler(node).totals.backups, 0);
  const systemChain = async () => (await nodes[0]?.server.audit.log.readOrgAuditEntries(SYSTEM_AUDIT_CHAIN, 0, 100))?.map((e) => e.action) ?? [];

  it("takes exactly one verified pair per interval across both nodes", async () => {
    await tickAll(); // the start-up ticks may have run it: at most one pair so far
    expect(await pairs()).toHaveLength(1);
    expect(totalBackups()).toBe(1);

    // Both timers at once: the advisory lock lets one run, the other skips.
    clock += DAY;
    await tickAll();
    await tickAll(); // a second firing within the interval takes nothing
    expect(await pairs()).toHaveLength(2);
    expect(totalBackups()).toBe(2);

    // One timer after the other (node b's fires once a's run is over): b finds the interval's backup taken.
    clock += DAY;
    for (const node of nodes) await scheduler(node).tick();
    for (const node of [...nodes].reverse()) await scheduler(node).tick();
    const names = await pairs();
    expect(names).toHaveLength(2); // three taken, the rotation keeps two days
    expect(totalBackups()).toBe(3);

    // The newest pair reads back whole, is one backup's pair, and holds what was written.
    const newest = path.join(backupDir, names.at(-1) as string);
    const masterKeys = await backupMasterKeys((nodes[0] as TestServer).server.config);
    const { manifest, keyring } = await readPostgresBackupPair(newest, newest.replace(/\.pbk$/, ".keyring.pbk"), masterKeys);
    expect(manifest.schema).toBe(SCHEMA);
    expect(manifest.rowCounts.entries).toBeGreaterThanOrEqual(2);
    expect(keyring.rowCounts.data_keys).toBeGreaterThanOrEqual(1);

    // …and restores (`parley restore`'s path) into a fresh schema, every table's row count checked.
    await admin.query(`CREATE DATABASE "${SCHEMA}"`);
    const restoredUrl = new URL(baseUrl as string);
    restoredUrl.pathname = `/${SCHEMA}`;
    restoredUrl.searchParams.set("options", "-c search_path=restored");
    const restored = await restorePostgresBackup({
      file: newest,
      keyringFile: newest.replace(/\.pbk$/, ".keyring.pbk"),
      databaseUrl: restoredUrl.toString(),
      dataDir: path.join(work, "restore-machine"),
      masterKeys,
      replayLedger: async () => "no ledger on this machine",
    });
    expect(restored.schema).toBe("restored");
    const restoredDb = new pg.Client({ connectionString: restoredUrl.toString() });
    await restoredDb.connect();
    const entries = await restoredDb.query("SELECT count(*)::int AS n FROM restored.entries").finally(() => restoredDb.end());
    expect(entries.rows[0].n).toBe(manifest.rowCounts.entries);

    const ran = nodes.filter((node) => scheduler(node).latest.backup?.file === newest);
    expect(ran).toHaveLength(1);
    expect(scheduler(ran[0] as TestServer).latest.backup).toMatchObject({ kind: "backup", ok: true });
    const ready = (await (await fetch(`${ran[0]?.httpUrl}/readyz`)).json()) as { backups: { backup: { ok: boolean } } };
    expect(ready.backups.backup.ok).toBe(true);
    expect(await systemChain()).toEqual(["backup.verified", "backup.verified", "backup.verified"]);
    let metricTotal = 0;
    for (const node of nodes) {
      const text = await node.server.metrics.registry.getSingleMetricAsString("parley_scheduled_backups_total");
      metricTotal += Number(/kind="backup",outcome="ok"\} (\d+)/.exec(text)?.[1] ?? 0);
    }
    expect(metricTotal).toBe(3);
  });

  it("keeps only the pairs the rotation keeps, each kept data file with its keyring file", async () => {
    // Within the default keyring retention (7 days) every kept data file keeps its keyring file (pairs() checks).
    for (let i = 0; i < 2; i++) {
      clock += DAY;
      await tickAll();
    }
    expect(await pairs()).toHaveLength(2);
    expect(nodes.flatMap((node) => scheduler(node).latest.backup?.keyringsRemoved ?? [])).toEqual([]);
    expect(totalBackups()).toBe(5);
    const removed = nodes.flatMap((node) => scheduler(node).latest.backup?.removed ?? []);
    expect(removed.length).toBeGreaterThanOrEqual(1);
  });

  it("skips the run while another session holds the backup lock", async () => {
    const holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      const held = await holder.query("SELECT pg_try_advisory_lock(hashtext('parley.scheduled-backup'), hashtext($1)) AS ok", [SCHEMA]);
      expect(held.rows[0].ok).toBe(true);
      const before = await pairs();
      clock += DAY;
      await tickAll();
      expect(await pairs()).toEqual(before);
      expect(totalBackups()).toBe(5);
    } finally {
      await holder.end();
    }
    clock += DAY;
    await tickAll();
    expect(totalBackups()).toBe(6);
  });

  it("reports a failed backup in the audit chain and /readyz, and as a security notice", async () => {
    await rm(backupDir, { recursive: true, force: true });
    await writeFile(backupDir, "not a folder");
    clock += DAY;
    await tickAll();
    expect(totalBackups()).toBe(7);
    const failed = nodes.filter((node) => scheduler(node).latest.backup?.ok === false);
    expect(failed).toHaveLength(1);
    const ready = (await (await fetch(`${failed[0]?.httpUrl}/readyz`)).json()) as { status: string; backups: { backup: { ok: boolean } } };
    expect(ready.status).toBe("ready");
    expect(ready.backups.backup.ok).toBe(false);
    expect((await systemChain()).at(-1)).toBe("backup.failed");
    // Days on the cluster's clock: the owner's sign-up token has expired by now.
    const api = apiClient(nodes[0]?.httpUrl as string);
    const listed = await api("GET", `/v1/organisations/${owner.orgId}/security-notices`, { token: await signIn(api, "owner@pgsched.example") });
    expect((listed.body.items as { data: { notice: string } }[]).map((n) => n.data.notice)).toContain("backup.failed");
  });
});
