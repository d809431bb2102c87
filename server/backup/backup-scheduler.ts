// Backups the server takes itself: every `everyMinutes` an encrypted online backup into the
// backup folder, verified (decrypted, checksums) right after it is written, then the rotation
// (daily / weekly / monthly counts) applied; every `drillEvery`-th backup a restore drill: the
// backup restored into a temporary data directory (the deletion ledger replayed, as a real
// restore does), every database checked by SQLite, every conversation's audit chain verified,
// and the row counts compared with those of the snapshot the backup was taken from. Each result
// is logged, kept for /readyz and the metrics, and handed to `onResult` (audit trail, notices).
// On Postgres (DATABASE_URL) the backup is the pair `parley backup FILE --keyring` writes, taken by
// one node of the cluster per interval, with the same verification, rotation and reporting; its
// drill (postgres-drill.ts) restores the newest pair into a scratch database, dropped afterwards,
// on the node that took the cluster's Nth backup. Keyring files are deleted after `keepKeyringDays`
// (null: with their data files), well before their data files: a data key destroyed since
// (crypto-shredding) then survives in no backup, and an old data file restores with the newest
// keyring (postgres-keyring-lineage.ts), which the drill also proves on the oldest of them.

import { access, copyFile, mkdir, mkdtemp, readdir, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type { Config } from "../platform/config.ts";
import { DELETION_LEDGER_FILE } from "../lifecycle/deletion-ledger.ts";
import type { Logger } from "../platform/logger.ts";
import { verifyConversation } from "../audit/verify-conversation.ts";
import { KEYRING_FILE } from "../store/keyring.ts";
import { backupsToKeep, type RotationCounts } from "./backup-rotation.ts";
import { createBackup } from "./create-backup.ts";
import { describeReplay, replayLedgerOffline } from "./ledger-replay.ts";
import { openOfflineStore } from "./offline-store.ts";
import { createPostgresBackup, namesItsDeployment, readPostgresBackupPair } from "./postgres-backup.ts";
import { claimScheduledBackup } from "./postgres-backup-claim.ts";
import { drillPostgresBackup } from "./postgres-drill.ts";
import { restoreBackup, verifyBackup } from "./restore-backup.ts";

/** When and how much to back up (PARLEY_BACKUP_*). */
export interface BackupScheduleSettings {
  dir: string;
  everyMinutes: number;
  keep: RotationCounts;
  /** A restore drill after every this many backups (1: after each). */
  drillEvery: number;
  /** Postgres: a backup's keyring file is deleted once the backup is this many days old (its data file stays while the rotation keeps it); null: kept as long as its data file. */
  keepKeyringDays: number | null;
}

/** What one scheduled backup or drill did. */
export interface BackupRunResult {
  kind: "backup" | "drill";
  ok: boolean;
  at: number;
  file: string;
  /** Why it failed (ok false). */
  error?: string;
  /** Backups removed by the rotation (backups). */
  removed?: string[];
  /** Postgres: keyring files removed because their backup is older than the keyring retention (backups). */
  keyringsRemoved?: string[];
  /** Rows per table in the restored copy (drills). */
  counts?: Record<string, number>;
  /** Audit chains verified (drills; on Postgres organisations' chains too). */
  chainsVerified?: number;
  /** Conversations whose document was loaded and applied (Postgres drills). */
  documentsOpened?: number;
  /** Postgres drills with a keyring retention: the oldest kept data file whose keyring file is gone, drilled too with the newest keyring. */
  olderFile?: string;
  /** Audit chains verified in that older file's restored copy. */
  olderChainsVerified?: number;
}

/** What the scheduler needs from the server. */
export interface BackupSchedulerDeps {
  config: Config;
  settings: BackupScheduleSettings;
  /** Current master key first, then retired ones (for the drill's decryption). */
  masterKeys: () => Promise<Uint8Array[]>;
  auditKey: Uint8Array;
  logger: Logger;
  now: () => number;
  onResult: (result: BackupRunResult) => void | Promise<void>;
}

const NAME = /^parley-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)\.pbk$/;
const fileName = (at: number) => `parley-${new Date(at).toISOString().replaceAll(":", "-").replace(".", "-")}.pbk`;
/** A Postgres backup's keyring file, next to its data file (`parley-….pbk` → `parley-….keyring.pbk`, which the rotation's name pattern does not match). */
const keyringFileOf = (file: string) => file.replace(/\.pbk$/, ".keyring.pbk");
const DAY_MS = 86_400_000;
function timeOf(name: string): number | null {
  const match = NAME.exec(name);
  if (!match) return null;
  const [date, time] = match[1].split("T");
  const [h, m, s, ms] = time.replace("Z", "").split("-");
  return Date.parse(`${date}T${h}:${m}:${s}.${ms}Z`);
}

/** Rows per table of every embedded database copy, keyed `<db>/<table>`. */
function rowCounts(file: string, into: Record<string, number>, prefix: string): void {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    for (const { name } of tables) into[`${prefix}/${name}`] = (db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A consistent copy of a live SQLite file (its WAL included), through SQLite's backup API. */
async function copyDatabase(source: string, target: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    await db.backup(target);
  } finally {
    db.close();
  }
}

function integrityOk(file: string): string | null {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    return rows.length === 1 && rows[0].integrity_check === "ok" ? null : rows.map((r) => r.integrity_check).join("; ");
  } finally {
    db.close();
  }
}

/** Runs the schedule; `tick()` is what the timer calls (tests call it with their own clock). */
export class BackupScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastBackupAt: number | null = null;
  private backupsSinceDrill = 0;
  /** The latest result of each kind (readyz, metrics). */
  readonly latest: { backup: BackupRunResult | null; drill: BackupRunResult | null } = { backup: null, drill: null };
  readonly totals = { backups: 0, backupFailures: 0, drills: 0, drillFailures: 0 };

  constructor(private readonly deps: BackupSchedulerDeps) {}

  /** Checks once a minute whether a backup is due (the first one is due at once). */
  start(): void {
    this.timer = setInterval(() => void this.tick(), 60_000);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Takes a backup if one is due (and a drill if that one is due); one run at a time. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    const now = this.deps.now();
    if (this.lastBackupAt !== null && now - this.lastBackupAt < this.deps.settings.everyMinutes * 60_000) return Promise.resolve();
    this.running = this.backupAndMaybeDrill().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async backupAndMaybeDrill(): Promise<void> {
    const at = this.deps.now();
    this.lastBackupAt = at;
    const file = path.join(this.deps.settings.dir, fileName(at));
    const databaseUrl = this.deps.config.store.databaseUrl;
    if (databaseUrl) return this.postgresBackup(databaseUrl, at, file);
    const snapshotCounts: Record<string, number> = {};
    let result: BackupRunResult;
    try {
      await mkdir(this.deps.settings.dir, { recursive: true, mode: 0o700 });
      const [masterKey, ...retired] = await this.deps.masterKeys();
      await createBackup({ dataDir: this.deps.config.dataDir, now: this.deps.now, masterKey, out: file, inspectSnapshot: (name, copy) => rowCounts(copy, snapshotCounts, name) });
      await verifyBackup(file, [masterKey, ...retired]);
      result = { kind: "backup", ok: true, at, file, ...(await this.rotate()) };
    } catch (error) {
      result = { kind: "backup", ok: false, at, file, error: (error as Error).message };
    }
    await this.report(result);
    if (!result.ok) return;
    if (++this.backupsSinceDrill < this.deps.settings.drillEvery) return;
    this.backupsSinceDrill = 0;
    await this.report(await this.drill(file, snapshotCounts));
  }

  /**
   * A Postgres deployment's backup: the data and keyring files (`parley backup FILE --keyring`),
   * taken by one node of the cluster only (postgres-backup-claim.ts), both read back whole and
   * checked to be one pair, then the rotation; when the cluster's drill is due, the drill of the
   * newest pair, under the same claim.
   */
  private async postgresBackup(databaseUrl: string, at: number, file: string): Promise<void> {
    const keyringFile = keyringFileOf(file);
    let result: BackupRunResult;
    let drill: BackupRunResult | null = null;
    try {
      const masterKeys = await this.deps.masterKeys();
      const schedule = { everyMs: this.deps.settings.everyMinutes * 60_000, drillEvery: this.deps.settings.drillEvery };
      const claim = await claimScheduledBackup(
        databaseUrl,
        at,
        schedule,
        async () => {
          await mkdir(this.deps.settings.dir, { recursive: true, mode: 0o700 });
          await createPostgresBackup({ databaseUrl, now: this.deps.now, workDir: this.deps.config.dataDir, masterKey: masterKeys[0] as Uint8Array, out: file, keyringOut: keyringFile });
          await readPostgresBackupPair(file, keyringFile, masterKeys);
        },
        () => this.postgresDrill(databaseUrl),
      );
      if (!claim.taken) {
        // Another node's backup counts as this interval's: wait the interval from it.
        if (claim.lastAt !== null) this.lastBackupAt = claim.lastAt;
        this.deps.logger.info({ lastAt: claim.lastAt }, `scheduled backup skipped: ${claim.reason} (another node of the cluster)`);
        return;
      }
      drill = claim.drill;
      result = { kind: "backup", ok: true, at, file, ...(await this.rotate()) };
    } catch (error) {
      result = { kind: "backup", ok: false, at, file, error: (error as Error).message };
      // Half a pair or an unverified one restores nothing, and must not take a place in the rotation.
      for (const written of [file, keyringFile]) await unlink(written).catch(() => undefined);
    }
    await this.report(result);
    if (drill) await this.report(drill);
  }

  /** The drill of the newest pair in the backup folder (the one just taken, unless the folder says otherwise). */
  private async postgresDrill(databaseUrl: string): Promise<BackupRunResult> {
    const at = this.deps.now();
    const newest = (await this.scheduledBackups()).sort((a, b) => b.at - a.at)[0];
    const file = newest ? path.join(this.deps.settings.dir, newest.name) : this.deps.settings.dir;
    try {
      if (!newest) throw new Error(`no scheduled backup in ${this.deps.settings.dir} to drill`);
      const drill = (data: string) => drillPostgresBackup({ databaseUrl, file: data, keyringFile: keyringFileOf(file), config: this.deps.config, auditKey: this.deps.auditKey });
      const outcome = await drill(file);
      // With a keyring retention, the oldest kept data file too, with the newest keyring: the
      // weekly and monthly backups must stay restorable once their own keyring files are gone.
      const older = await this.oldestWithoutKeyring();
      if (!older) return { kind: "drill", ok: true, at, file, ...outcome };
      try {
        const old = await drill(older);
        return { kind: "drill", ok: true, at, file, ...outcome, olderFile: older, olderChainsVerified: old.chainsVerified };
      } catch (error) {
        throw new Error(`${older} with the newest keyring ${path.basename(keyringFileOf(file))}: ${(error as Error).message}`);
      }
    } catch (error) {
      return { kind: "drill", ok: false, at, file, error: (error as Error).message };
    }
  }

  /** The oldest kept data file whose own keyring file is gone (deleted by the keyring retention), or null. */
  private async oldestWithoutKeyring(): Promise<string | null> {
    for (const backup of (await this.scheduledBackups()).sort((a, b) => a.at - b.at)) {
      const data = path.join(this.deps.settings.dir, backup.name);
      if (!(await access(keyringFileOf(data)).then(() => true, () => false))) return data;
    }
    return null;
  }

  /** The scheduled backups' data files in the backup folder, with their times. */
  private async scheduledBackups(): Promise<{ name: string; at: number }[]> {
    return (await readdir(this.deps.settings.dir)).flatMap((name) => {
      const at = timeOf(name);
      return at === null ? [] : [{ name, at }];
    });
  }

  /**
   * Deletes the scheduled backups the rotation does not keep (with a Postgres backup's keyring
   * file), then the keyring files of the kept backups older than the keyring retention; returns
   * the names of both.
   */
  private async rotate(): Promise<{ removed: string[]; keyringsRemoved: string[] }> {
    const backups = await this.scheduledBackups();
    const keep = backupsToKeep(backups, this.deps.settings.keep);
    const removed = backups.filter((b) => !keep.has(b.name)).map((b) => b.name);
    const unlinkKeyring = (name: string) =>
      unlink(keyringFileOf(path.join(this.deps.settings.dir, name))).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
          return false;
        },
      );
    for (const name of removed) {
      await unlink(path.join(this.deps.settings.dir, name));
      await unlinkKeyring(name);
    }
    const keyringsRemoved: string[] = [];
    const days = this.deps.settings.keepKeyringDays;
    if (days === null) return { removed, keyringsRemoved };
    const keyringCutoff = this.deps.now() - days * DAY_MS;
    for (const backup of backups) {
      if (!keep.has(backup.name) || backup.at >= keyringCutoff) continue;
      const data = path.join(this.deps.settings.dir, backup.name);
      const keyring = keyringFileOf(data);
      if (!(await access(keyring).then(() => true, () => false))) continue;
      // Made before backups named their deployment, a data file opens with its own keyring only: kept.
      if (!(await namesItsDeployment(data, await this.deps.masterKeys()).catch(() => false))) continue;
      if (await unlinkKeyring(backup.name)) keyringsRemoved.push(path.basename(keyring));
    }
    return { removed, keyringsRemoved };
  }

  /** Restores `file` into a temporary data directory and checks what came back. */
  async drill(file: string, expected: Record<string, number>): Promise<BackupRunResult> {
    const at = this.deps.now();
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-drill-"));
    try {
      const live = this.deps.config.dataDir;
      // A restore needs what the backup deliberately leaves out: the keyring and the ledger.
      await copyDatabase(path.join(live, KEYRING_FILE), path.join(dataDir, KEYRING_FILE));
      await copyFile(path.join(live, DELETION_LEDGER_FILE), path.join(dataDir, DELETION_LEDGER_FILE)).catch(() => undefined);
      const config: Config = { ...this.deps.config, dataDir, store: { ...this.deps.config.store, databaseUrl: null } };
      const restored = await restoreBackup({
        now: this.deps.now,
        file,
        dataDir,
        masterKeys: await this.deps.masterKeys(),
        replayLedger: async () => describeReplay(await replayLedgerOffline(config, this.deps.logger, this.deps.now)),
      });
      const counts: Record<string, number> = {};
      for (const database of restored.manifest.databases) {
        const problem = integrityOk(path.join(dataDir, database.name));
        if (problem) throw new Error(`${database.name} failed SQLite's integrity check: ${problem}`);
        rowCounts(path.join(dataDir, database.name), counts, database.name);
      }
      // The ledger replay may rightly remove what was destroyed since; anything else must match.
      const replayed = !/destroyed again 0 conversation\(s\).*erased again 0 person/.test(restored.ledger);
      for (const [table, count] of Object.entries(expected)) {
        if (!replayed && counts[table] !== count) throw new Error(`${table}: ${counts[table] ?? "missing"} rows restored, ${count} backed up`);
      }
      const store = await openOfflineStore(config, this.deps.now);
      let chainsVerified = 0;
      try {
        const db = new Database(path.join(dataDir, "parley.db"), { readonly: true });
        const conversations = (db.prepare("SELECT id FROM conversations ORDER BY id").all() as { id: string }[]).map((r) => r.id);
        db.close();
        for (const conversation of conversations) {
          const verdict = await verifyConversation(store, conversation, this.deps.auditKey);
          if (!verdict.ok) throw new Error(`conversation ${conversation}'s audit chain does not verify after the restore: ${JSON.stringify(verdict)}`);
          chainsVerified++;
        }
      } finally {
        await store.close();
      }
      return { kind: "drill", ok: true, at, file, counts, chainsVerified };
    } catch (error) {
      return { kind: "drill", ok: false, at, file, error: (error as Error).message };
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }

  private async report(result: BackupRunResult): Promise<void> {
    this.latest[result.kind] = result;
    if (result.kind === "backup") {
      this.totals.backups++;
      if (!result.ok) this.totals.backupFailures++;
    } else {
      this.totals.drills++;
      if (!result.ok) this.totals.drillFailures++;
    }
    const fields = { security: result.ok ? undefined : `${result.kind}-failed`, ...result, counts: undefined };
    if (result.ok) this.deps.logger.info(fields, `scheduled ${result.kind} ok`);
    else this.deps.logger.error(fields, `scheduled ${result.kind} FAILED`);
    try {
      await this.deps.onResult(result);
    } catch (error) {
      this.deps.logger.error({ err: error }, "backup result not recorded");
    }
  }
}
