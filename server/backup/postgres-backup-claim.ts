// Which node of a Postgres cluster takes a scheduled backup. The run holds a session advisory lock
// (keyed by Parley's schema, so two deployments in one database never block each other): a node
// that finds it taken skips. Under the lock the time of the cluster's last scheduled backup is read
// from and written to the database, so a node whose timer fires after another node's run sees the
// backup already taken and skips too: one backup per interval for the whole cluster. The same row
// counts the cluster's backups since its last restore drill, so the drill after every Nth backup
// runs once for the cluster too, on the node that took that backup, still under the lock.

import { BackupError } from "./backup-file.ts";
import { connect, quoteIdent, targetSchema } from "./postgres-tools.ts";

/** The table holding the last scheduled backup's time (one row; created on first use). */
export const BACKUP_SCHEDULE_TABLE = "backup_schedule";

/** The advisory lock's two keys: Parley's scheduled backup, in this schema ($1). */
const LOCK_KEY = "hashtext('parley.scheduled-backup'), hashtext($1)";

/** Either this node ran the backup (and the drill, when one was due), or another node holds the run or took it within the interval. */
export type ClaimOutcome<T, D> =
  | { taken: true; value: T; drill: D | null }
  | { taken: false; reason: "running elsewhere" | "taken already"; lastAt: number | null };

/** How often the cluster backs up and drills. */
export interface ClaimSchedule {
  everyMs: number;
  /** A drill after every this many successful backups of the cluster. */
  drillEvery: number;
}

/**
 * Runs `backup` if the cluster's last scheduled backup is at least `everyMs` before `at` and no
 * other node is running one; then, when it was the cluster's `drillEvery`-th successful backup
 * since the last drill, `drill` (with the lock still held: no other node's drill or backup runs
 * meanwhile). `drill` reports its own failure in its value; a failed backup counts toward nothing.
 */
export async function claimScheduledBackup<T, D>(
  databaseUrl: string,
  at: number,
  schedule: ClaimSchedule,
  backup: () => Promise<T>,
  drill: (backedUp: T) => Promise<D>,
): Promise<ClaimOutcome<T, D>> {
  const client = await connect(databaseUrl);
  try {
    const schema = await targetSchema(client);
    const locked = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`, [schema]);
    if (!locked.rows[0]?.ok) return { taken: false, reason: "running elsewhere", lastAt: null };
    try {
      const table = `${quoteIdent(schema)}.${quoteIdent(BACKUP_SCHEDULE_TABLE)}`;
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY CHECK (id = 1), last_backup_at bigint NOT NULL)`);
      // Added after the table first shipped: older deployments gain it on their next run.
      await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS backups_since_drill int NOT NULL DEFAULT 0`);
      const row = (await client.query<{ last: string }>(`SELECT last_backup_at AS last FROM ${table} WHERE id = 1`)).rows[0];
      const lastAt = row ? Number(row.last) : null;
      if (lastAt !== null && at - lastAt < schedule.everyMs) return { taken: false, reason: "taken already", lastAt };
      // Claimed before the dump: a failed backup also waits the interval, as on the embedded store.
      await client.query(`INSERT INTO ${table} (id, last_backup_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET last_backup_at = EXCLUDED.last_backup_at`, [at]);
      const value = await backup();
      const counted = await client.query<{ n: number }>(`UPDATE ${table} SET backups_since_drill = backups_since_drill + 1 WHERE id = 1 RETURNING backups_since_drill AS n`);
      if ((counted.rows[0]?.n ?? 0) < schedule.drillEvery) return { taken: true, value, drill: null };
      // Reset before the drill: a failed drill is reported and the next one waits its turn, as on the embedded store.
      await client.query(`UPDATE ${table} SET backups_since_drill = 0 WHERE id = 1`);
      return { taken: true, value, drill: await drill(value) };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, [schema]).catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof BackupError) throw error;
    throw new BackupError(`scheduled Postgres backup: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
