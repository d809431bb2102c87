// A Postgres data backup restored with a NEWER keyring of the same deployment. Keyring files may be
// kept for less time than data files (PARLEY_BACKUP_KEEP_KEYRING_DAYS), so that a conversation's
// destroyed data key reaches old backups too; an old data file then restores with the newest kept
// keyring. A data key never changes for its conversation (a master key rotation rewraps it, the
// key stays), and a destroyed conversation's id is never used again (its tombstone), so the newer
// keyring opens every conversation of the old data except those destroyed since: those have no
// key in it. They come back as destroyed: their rows deleted and tombstoned in the restore's own
// transaction, and recorded in the deletion ledger, whose replay finishes them in the directory.
//
// "The same deployment" is a random id kept in the deployment's schema (table backup_deployment,
// made by its first backup) and written into both manifests; a restore carries it over, so the
// backups taken after a restore stay one lineage with those before. A keyring of another
// deployment, or an older one (it lacks the keys of conversations started since the data was
// taken, which would be destroyed by mistake), is refused before anything is changed.

import { randomUUID } from "node:crypto";
import type pg from "pg";
import { BackupError } from "./backup-file.ts";
import { quoteIdent } from "./postgres-tools.ts";

/** The one-row table naming the deployment (created by its first backup, restored with its data). */
export const DEPLOYMENT_TABLE = "backup_deployment";

/** The deployment's id, made on first use; read before the backup's snapshot so the dump holds it. */
export async function deploymentIdOf(client: pg.Client, schema: string): Promise<string> {
  const table = `${quoteIdent(schema)}.${quoteIdent(DEPLOYMENT_TABLE)}`;
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY CHECK (id = 1), deployment_id text NOT NULL)`);
  await client.query(`INSERT INTO ${table} (id, deployment_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, [randomUUID()]);
  const row = (await client.query<{ id: string }>(`SELECT deployment_id AS id FROM ${table} WHERE id = 1`)).rows[0];
  if (!row) throw new BackupError(`${table} holds no deployment id`);
  return row.id;
}

/** What the check reads of each manifest. */
interface Lineage {
  backupId: string;
  createdAt: string;
  deploymentId?: string | undefined;
}

/**
 * Whether `keyring` may open `data`: its own keyring (same backup), or a keyring of a later backup
 * of the same deployment (`newer`). Throws {@link BackupError} for anything else.
 */
export function checkKeyringLineage(data: Lineage, keyring: Lineage, keyringFile: string): { newer: boolean } {
  if (keyring.backupId === data.backupId) return { newer: false };
  const unchanged = "Nothing was changed";
  if (!data.deploymentId || !keyring.deploymentId) {
    throw new BackupError(
      `${keyringFile} is the keyring of another backup (${keyring.createdAt}), not of ${data.createdAt}, and one of the two was made before backups named their deployment: only the backup's own keyring restores it. ${unchanged}`,
    );
  }
  if (keyring.deploymentId !== data.deploymentId) {
    throw new BackupError(`${keyringFile} is the keyring of another deployment (${keyring.deploymentId}; this backup's deployment is ${data.deploymentId}): it cannot open this backup. ${unchanged}`);
  }
  if (Date.parse(keyring.createdAt) < Date.parse(data.createdAt)) {
    throw new BackupError(
      `${keyringFile} is older (${keyring.createdAt}) than the backup (${data.createdAt}): it lacks the keys of the conversations started in between, which would be lost as destroyed. Use the backup's own keyring or a newer one of this deployment. ${unchanged}`,
    );
  }
  return { newer: true };
}

const MARK = "parley-destroyed-since:";

/**
 * psql arguments (inside the restore's transaction, after its row-count check) that find the
 * conversations of the restored data without a key in the restored keyring, delete their rows,
 * tombstone them, and print their ids (read back by {@link destroyedSinceIn}).
 */
export function destroyedSinceScript(schema: string, destroyedAt: number): string[] {
  const t = (table: string) => `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const gone = "pg_temp.parley_destroyed_since";
  const held = ["SELECT id FROM " + t("conversations"), ...["entries", "snapshots", "client_ids"].map((table) => `SELECT conversation_id FROM ${t(table)}`)].join(" UNION ");
  return [
    "-c",
    `CREATE TEMP TABLE parley_destroyed_since ON COMMIT DROP AS SELECT held.id FROM (${held}) AS held(id) WHERE NOT EXISTS (SELECT 1 FROM ${t("data_keys")} k WHERE k.conversation_id = held.id)`,
    ...["entries", "snapshots", "client_ids"].flatMap((table) => ["-c", `DELETE FROM ${t(table)} WHERE conversation_id IN (SELECT id FROM ${gone})`]),
    "-c",
    `DELETE FROM ${t("conversations")} WHERE id IN (SELECT id FROM ${gone})`,
    "-c",
    `INSERT INTO ${t("destroyed_conversations")} (id, destroyed_at) SELECT id, ${Math.trunc(destroyedAt)} FROM ${gone} ON CONFLICT (id) DO NOTHING`,
    "-c",
    `SELECT '${MARK}' || id FROM ${gone} ORDER BY id`,
  ];
}

/** The ids {@link destroyedSinceScript} printed. */
export function destroyedSinceIn(psqlOutput: string): string[] {
  return psqlOutput
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith(MARK))
    .map((line) => line.slice(MARK.length));
}
