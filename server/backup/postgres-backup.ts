// Backup and restore of a Postgres deployment (DATABASE_URL): `parley backup FILE --keyring KFILE`
// takes pg_dump of Parley's schema and, apart, of the data keys, both inside one exported snapshot
// with every table's row count, each sealed in the same encrypted container as an embedded backup.
// The keyring goes to its own file so data backups can be kept long and the keyring briefly
// (crypto-shredding must reach old backups); an old data file restores with a later keyring of the
// same deployment, minus the conversations destroyed since (postgres-keyring-lineage.ts).
// `parley restore FILE --keyring KFILE` verifies both
// files whole, then applies them with psql in ONE transaction into an empty schema (renaming the
// dumped schema when the target is named otherwise) and checks every table's row count against the
// manifest before it commits: a restore either lands complete or changes nothing.

import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { access, mkdir, mkdtemp, open, rename, rm, unlink } from "node:fs/promises";
import path from "node:path";
import { finished } from "node:stream/promises";
import { z } from "zod";
import { BACKUP_FORMAT_VERSION, BackupError, BackupFileWriter, readBackupFile } from "./backup-file.ts";
import { checkManifestLength, encodeManifest, parleyVersion, parseManifestJson } from "./backup-manifest.ts";
import { hashFile } from "./create-backup.ts";
import { PayloadReader } from "./restore-backup.ts";
import { connect, inExportedSnapshot, quoteIdent, relationsIn, rowCounts, runTool, tablesOf, targetSchema } from "./postgres-tools.ts";
import { checkKeyringLineage, deploymentIdOf, destroyedSinceIn, destroyedSinceScript } from "./postgres-keyring-lineage.ts";
import { runningServer } from "./server-lock.ts";
import { DeletionLedger } from "../lifecycle/deletion-ledger.ts";
import { type Clock, systemClock } from "../platform/clock.ts";

/** The table of data keys: dumped only into the keyring file. */
const KEYRING_TABLE = "data_keys";

const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT_VERSION),
  kind: z.enum(["postgres-data", "postgres-keyring"]),
  /** Shared by the data file and its keyring file. */
  backupId: z.string().uuid(),
  /** The deployment's id (postgres-keyring-lineage.ts): a later keyring of the same deployment opens an older data file. Absent in backups made before it. */
  deploymentId: z.string().uuid().optional(),
  createdAt: z.string(),
  parleyVersion: z.string(),
  /** The schema as dumped (a restore into another name renames it). */
  schema: z.string().min(1).max(63),
  /** Rows per table in the snapshot: the data file counts every table but the data keys; the keyring file those. */
  rowCounts: z.record(z.string().min(1).max(63), z.number().int().min(0)),
  dump: z.object({ size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
});

/** What a Postgres backup file holds. */
export type PostgresBackupManifest = z.infer<typeof manifestSchema>;

/**
 * The manifest JSON at the head of a backup file, from its first chunk only (authenticated; the
 * manifest fits in it), unchecked; null when it is not JSON or the chunk is too short.
 */
async function firstChunkManifest(file: string, masterKeys: readonly Uint8Array[]): Promise<unknown> {
  const handle = await open(file, "r").catch((error: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot open backup ${file}: ${error.code ?? error.message}`);
  });
  try {
    const chunks = readBackupFile(handle, masterKeys);
    const first = (await chunks.next()).value;
    await chunks.return(undefined);
    if (!first || first.length < 4) return null;
    const length = first.readUInt32BE(0);
    checkManifestLength(length);
    return JSON.parse(first.subarray(4, 4 + length).toString("utf8")) as unknown;
  } catch (error) {
    if (error instanceof BackupError) throw error;
    return null;
  } finally {
    await handle.close();
  }
}

/** Whether `file` is a Postgres backup (its manifest names a kind) rather than an embedded one; the full check comes after. */
export async function isPostgresBackup(file: string, masterKeys: readonly Uint8Array[]): Promise<boolean> {
  const kind = ((await firstChunkManifest(file, masterKeys)) as { kind?: unknown } | null)?.kind;
  return typeof kind === "string" && kind.startsWith("postgres-");
}

/**
 * Whether a Postgres backup file names its deployment (made since backups do): a later keyring of
 * the deployment can then open it (postgres-keyring-lineage.ts). The keyring retention asks this
 * before deleting a keyring file.
 */
export async function namesItsDeployment(file: string, masterKeys: readonly Uint8Array[]): Promise<boolean> {
  const parsed = manifestSchema.safeParse(await firstChunkManifest(file, masterKeys));
  return parsed.success && parsed.data.deploymentId !== undefined;
}

/** Seals `manifest` and the dump file into `out` (written under a temporary name, renamed into place). */
export async function sealPostgresBackup(out: string, masterKey: Uint8Array, manifest: PostgresBackupManifest, dump: string): Promise<void> {
  const temp = `${out}.${randomUUID()}.tmp`;
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      const writer = new BackupFileWriter(handle, masterKey);
      await writer.write(encodeManifest(manifest));
      for await (const chunk of createReadStream(dump, { highWaterMark: 1 << 20 })) await writer.write(chunk as Buffer);
      await writer.finish();
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, out);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

export interface PostgresBackupOptions {
  databaseUrl: string;
  /** The clock the manifest's createdAt is read from (the server's or the CLI's; default: the system's). */
  now?: Clock;
  /** A private folder for the dumps while they are sealed (the data directory: as protected as the data). */
  workDir: string;
  masterKey: Uint8Array;
  out: string;
  keyringOut: string;
}

/** Dumps the deployment's schema and its keyring from one snapshot into two encrypted files. */
export async function createPostgresBackup(options: PostgresBackupOptions): Promise<{ data: PostgresBackupManifest; keyring: PostgresBackupManifest }> {
  if (path.resolve(options.out) === path.resolve(options.keyringOut)) throw new BackupError("the keyring file must be another file than the backup");
  await mkdir(options.workDir, { recursive: true, mode: 0o700 });
  const client = await connect(options.databaseUrl);
  const work = await mkdtemp(path.join(options.workDir, ".pg-backup-"));
  try {
    const schema = await targetSchema(client);
    if (!(await tablesOf(client, schema)).includes(KEYRING_TABLE)) throw new BackupError(`schema ${schema} holds no Parley store (no ${KEYRING_TABLE} table): check DATABASE_URL's search_path`);
    const deploymentId = await deploymentIdOf(client, schema);
    const backupId = randomUUID();
    const createdAt = new Date((options.now ?? systemClock)()).toISOString();
    const version = await parleyVersion();
    const dumps = await inExportedSnapshot(client, async (snapshot) => {
      const counts = await rowCounts(client, schema);
      if (!(KEYRING_TABLE in counts)) throw new BackupError(`schema ${schema} holds no Parley store (no ${KEYRING_TABLE} table): check DATABASE_URL's search_path`);
      const qualified = `${quoteIdent(schema)}.${quoteIdent(KEYRING_TABLE)}`;
      const common = ["--no-owner", "--no-privileges", `--snapshot=${snapshot}`];
      const dataDump = path.join(work, "data.sql");
      const keyringDump = path.join(work, "keyring.sql");
      // The keyring table's definition stays in the data dump; its rows go only to the keyring dump.
      await runTool("pg_dump", [...common, `--schema=${quoteIdent(schema)}`, `--exclude-table-data=${qualified}`, `--file=${dataDump}`], options.databaseUrl);
      await runTool("pg_dump", [...common, "--data-only", `--table=${qualified}`, `--file=${keyringDump}`], options.databaseUrl);
      const { [KEYRING_TABLE]: keys, ...dataCounts } = counts;
      return { dataDump, keyringDump, dataCounts, keyCounts: { [KEYRING_TABLE]: keys as number } };
    });
    const base = { format: BACKUP_FORMAT_VERSION, backupId, deploymentId, createdAt, parleyVersion: version, schema } as const;
    const data: PostgresBackupManifest = { ...base, kind: "postgres-data", rowCounts: dumps.dataCounts, dump: await hashFile(dumps.dataDump) };
    const keyring: PostgresBackupManifest = { ...base, kind: "postgres-keyring", rowCounts: dumps.keyCounts, dump: await hashFile(dumps.keyringDump) };
    await sealPostgresBackup(options.out, options.masterKey, data, dumps.dataDump);
    await sealPostgresBackup(options.keyringOut, options.masterKey, keyring, dumps.keyringDump);
    return { data, keyring };
  } finally {
    await client.end().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads a whole Postgres backup file (every chunk, the checksum, the dump's SHA-256), extracting the dump to `extractTo` if given. */
export async function readPostgresBackup(file: string, masterKeys: readonly Uint8Array[], extractTo?: string): Promise<PostgresBackupManifest> {
  const handle = await open(file, "r").catch((error: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot open backup ${file}: ${error.code ?? error.message}`);
  });
  try {
    const reader = new PayloadReader(readBackupFile(handle, masterKeys));
    const result = manifestSchema.safeParse(parseManifestJson(await reader.manifestJson()));
    if (!result.success) throw new BackupError(`Postgres backup manifest is invalid: ${result.error.issues[0]?.path.join(".")} ${result.error.issues[0]?.message}`);
    const manifest = result.data;
    const hash = createHash("sha256");
    const out: WriteStream | null = extractTo ? createWriteStream(extractTo, { flags: "wx", mode: 0o600 }) : null;
    try {
      await reader.pipe(manifest.dump.size, async (piece) => {
        hash.update(piece);
        if (out && !out.write(piece)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
      });
    } finally {
      out?.end();
      if (out) await finished(out);
    }
    if (hash.digest("hex") !== manifest.dump.sha256) throw new BackupError("the dump in the backup does not match its SHA-256");
    await reader.end();
    return manifest;
  } finally {
    await handle.close();
  }
}

/**
 * Reads a data backup and a keyring file whole and checks the keyring may open it: its own, or a
 * later one of the same deployment (`newerKeyring`; postgres-keyring-lineage.ts). Extracts both dumps if asked.
 */
export async function readPostgresBackupPair(
  file: string,
  keyringFile: string,
  masterKeys: readonly Uint8Array[],
  extractTo?: { data: string; keyring: string },
): Promise<{ manifest: PostgresBackupManifest; keyring: PostgresBackupManifest; newerKeyring: boolean }> {
  const manifest = await readPostgresBackup(file, masterKeys, extractTo?.data);
  if (manifest.kind === "postgres-data" && !(await access(keyringFile).then(() => true, () => false))) {
    throw new BackupError(
      `the keyring file of backup ${manifest.backupId} (${manifest.createdAt}) is not there (${keyringFile}): without the data keys it holds, this data backup cannot be decrypted or restored. Keyring files are kept only briefly (scheduled backups: PARLEY_BACKUP_KEEP_KEYRING_DAYS) so that destroying a conversation's key reaches old data backups too; restore it with the newest keyring file kept of this deployment (--keyring; the conversations destroyed since are then not restored), or a newer backup. Nothing was changed`,
    );
  }
  const keyring = await readPostgresBackup(keyringFile, masterKeys, extractTo?.keyring);
  if (manifest.kind !== "postgres-data") throw new BackupError(`${file} is a keyring file, not a data backup`);
  if (keyring.kind !== "postgres-keyring") throw new BackupError(`${keyringFile} is not a keyring file`);
  const { newer } = checkKeyringLineage(manifest, keyring, keyringFile);
  return { manifest, keyring, newerKeyring: newer };
}

export interface PostgresRestoreOptions {
  file: string;
  keyringFile: string;
  databaseUrl: string;
  /** The node's data directory: no server may run on it, and it holds the staging folder. */
  dataDir: string;
  masterKeys: readonly Uint8Array[];
  /** The clock the tombstones of conversations destroyed since are stamped by (default: the system's). */
  now?: Clock;
  /** Destroys again what the deletion ledger records; runs after the commit, before any server starts. */
  replayLedger: () => Promise<string>;
}

/** A DO block that raises (rolling the restore back) unless every table holds the manifest's row count. */
function rowCountCheck(schema: string, counts: Record<string, number>): string {
  const checks = Object.entries(counts).map(([table, expected]) => {
    const name = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    return `  IF (SELECT count(*) FROM ${name}) <> ${expected} THEN RAISE EXCEPTION 'restored table % holds % rows, the backup %', ${pgText(table)}, (SELECT count(*) FROM ${name}), ${expected}; END IF;`;
  });
  return `DO $check$\nBEGIN\n${checks.join("\n")}\nEND\n$check$;`;
}

/** An SQL string literal. */
function pgText(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Restores a Postgres backup and its keyring into the empty schema DATABASE_URL names. */
export async function restorePostgresBackup(
  options: PostgresRestoreOptions,
): Promise<{ manifest: PostgresBackupManifest; keyring: PostgresBackupManifest; schema: string; ledger: string; destroyedSince: string[] }> {
  const refuseIfRunning = async () => {
    const server = await runningServer(options.dataDir);
    if (server) throw new BackupError(`a Parley server (pid ${server.pid}) is running on ${options.dataDir}: stop every node before restoring`);
  };
  await refuseIfRunning();
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(path.join(options.dataDir, ".pg-restore-"));
  const client = await connect(options.databaseUrl);
  let connected = true;
  const disconnect = async () => {
    if (connected) await client.end().catch(() => undefined);
    connected = false;
  };
  try {
    // Both files whole, and from the same backup, before the database is touched.
    const dataDump = path.join(staging, "data.sql");
    const keyringDump = path.join(staging, "keyring.sql");
    const { manifest, keyring, newerKeyring } = await readPostgresBackupPair(options.file, options.keyringFile, options.masterKeys, { data: dataDump, keyring: keyringDump });

    const schema = await targetSchema(client);
    const present = await relationsIn(client, schema);
    if (present !== null && present > 0) throw new BackupError(`schema ${schema} is not empty (${present} relations): restore into an empty schema or a new database; nothing was changed`);
    if (schema !== manifest.schema && (await relationsIn(client, manifest.schema)) !== null) {
      throw new BackupError(`this database already has a schema ${manifest.schema} (the backup's): restore into another database; nothing was changed`);
    }
    // Opened before the transaction: a damaged ledger stops the restore before it changes anything.
    const deletionLedger = newerKeyring ? await DeletionLedger.open(options.dataDir) : null;
    await refuseIfRunning();
    // One transaction: an empty target schema dropped (the dump creates its own), the data, the
    // keys, the rename to the target's name, the row-count check. Any failure rolls all of it back.
    const script = [
      ...(present === 0 ? ["-c", `DROP SCHEMA ${quoteIdent(schema)}`] : []),
      "-f",
      dataDump,
      "-f",
      keyringDump,
      ...(schema !== manifest.schema ? ["-c", `ALTER SCHEMA ${quoteIdent(manifest.schema)} RENAME TO ${quoteIdent(schema)}`] : []),
      "-c",
      rowCountCheck(schema, { ...manifest.rowCounts, ...keyring.rowCounts }),
      // A later keyring: the conversations it has no key for were destroyed since; they stay so.
      ...(newerKeyring ? destroyedSinceScript(schema, (options.now ?? systemClock)()) : []),
    ];
    const output = await runTool("psql", ["--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--single-transaction", "-v", "ON_ERROR_STOP=1", ...script], options.databaseUrl);
    await disconnect();
    const destroyedSince = destroyedSinceIn(output);
    // Recorded as destructions: the replay removes their directory records and notes it in their parties' audit chains.
    const at = (options.now ?? systemClock)();
    for (const id of destroyedSince) await deletionLedger?.append("conversation", id, "replay", at);
    const ledger = await options.replayLedger();
    return { manifest, keyring, schema, ledger, destroyedSince };
  } finally {
    await disconnect();
    await rm(staging, { recursive: true, force: true });
  }
}
