// The backup commands of `parley`: `backup <file>`, `backup verify <file>`, `restore <file>`,
// `ledger replay`. On the embedded store they copy the SQLite databases; with DATABASE_URL they
// run pg_dump / psql (postgres-backup.ts), the keyring in a file of its own (`--keyring`).
// Point-in-time recovery stays Postgres's own (README, "Backup and restore").

import { parseArgs } from "node:util";
import { type Config, ConfigError } from "../platform/config.ts";
import { BackupError } from "../backup/backup-file.ts";
import type { BackupManifest } from "../backup/backup-manifest.ts";
import { createBackup } from "../backup/create-backup.ts";
import { NOT_BACKED_UP } from "../backup/embedded-databases.ts";
import { describeReplay, replayLedger } from "../backup/ledger-replay.ts";
import { createPostgresBackup, isPostgresBackup, type PostgresBackupManifest, readPostgresBackup, restorePostgresBackup } from "../backup/postgres-backup.ts";
import { restoreBackup, resumeRestore, verifyBackup } from "../backup/restore-backup.ts";
import { runningServer } from "../backup/server-lock.ts";
import { type CliContext, withCliContext } from "./cli-context.ts";

export const BACKUP_USAGE = `  parley backup FILE [--data-dir DIR]
                                    write an encrypted online backup of the embedded databases
                                    (safe while the server runs); NOT the keyring or key files
  parley backup FILE --keyring KEYRING_FILE   (with DATABASE_URL)
                                    pg_dump of Parley's schema into FILE and of its data keys
                                    into KEYRING_FILE (keep it apart, briefly), one snapshot,
                                    both encrypted; NOT the key files
  parley backup verify FILE [--data-dir DIR]
                                    check a backup (checksum, every chunk, manifest, databases)
  parley restore FILE [--data-dir DIR]
                                    restore a backup into a stopped server's data directory; the
                                    current databases are moved aside, never deleted; then
                                    replays the deletion ledger
  parley restore FILE --keyring KEYRING_FILE   (with DATABASE_URL)
                                    into the EMPTY schema DATABASE_URL names, in one transaction
                                    (row counts checked before it commits); every node stopped;
                                    then replays the deletion ledger
  parley restore --resume [--data-dir DIR]
                                    finish a restore that was interrupted (killed) mid-swap
  parley ledger replay [--data-dir DIR]
                                    destroy again what the deletion ledger records (after a
                                    restore of Postgres from pg_dump or PITR); server stopped`;

/** The command's positional arguments, `--data-dir` and `--keyring`, as given. */
interface BackupArgs {
  files: string[];
  dataDir: string | undefined;
  keyring: string | undefined;
}

function parse(args: string[], files: number): BackupArgs {
  const { values, positionals } = parseArgs({ args, options: { "data-dir": { type: "string" }, keyring: { type: "string" } }, allowPositionals: true, strict: true });
  if (positionals.length !== files) throw new ConfigError(`expected ${files === 1 ? "one backup file" : "no argument"}\nusage:\n${BACKUP_USAGE}`);
  return { files: positionals, dataDir: values["data-dir"], keyring: values.keyring };
}

/** Runs a backup command with the shared CLI wiring: its configuration, a silent logger, the parts it opens. */
function withContext<T>(parsed: BackupArgs, command: (context: CliContext) => Promise<T>): Promise<T> {
  return withCliContext({ dataDir: parsed.dataDir, logLevel: "silent" }, command);
}

/** What a command on one backup file works with. */
interface FileCommand {
  file: string;
  context: CliContext;
  /** The keyring file; given exactly when DATABASE_URL is set. */
  keyring: string | undefined;
  /** The raw master keys, current first. */
  masterKeys: Uint8Array[];
}

/** `backup FILE` and `restore FILE`: one file, and with DATABASE_URL the keyring file they need. */
function withFile(args: string[], command: (on: FileCommand) => Promise<void>): Promise<void> {
  const parsed = parse(args, 1);
  return withContext(parsed, async (context) => {
    const keyring = keyringFor(context.config, parsed.keyring);
    await command({ file: parsed.files[0] as string, context, keyring, masterKeys: await rawMasterKeys(context) });
  });
}

/** With DATABASE_URL the keyring file it needs, else none. */
function keyringFor(config: Config, keyring: string | undefined): string | undefined {
  if (config.store.databaseUrl && !keyring) {
    throw new ConfigError(
      "DATABASE_URL is set: the data keys go to a file of their own, kept apart from the data backups and briefly (crypto-shredding must reach old backups): add --keyring KEYRING_FILE",
    );
  }
  if (!config.store.databaseUrl && keyring) throw new ConfigError("--keyring is for Postgres deployments (DATABASE_URL); the embedded keyring is keyring.db in the data directory");
  return keyring;
}

/** The raw master keys, current first: backups are made with the first and opened with any. */
async function rawMasterKeys(context: CliContext): Promise<Uint8Array[]> {
  return (await context.masterKeys()).keys.map((k) => k.key);
}

/** The deletion ledger replayed over the context's parts (opened when the replay runs, after a restore's swap). */
function ledgerReplay(context: CliContext): () => Promise<string> {
  return async () => describeReplay(await replayLedger(context.config.dataDir, context, context.logger));
}

function describePostgres(manifest: PostgresBackupManifest): string {
  const rows = Object.entries(manifest.rowCounts).map(([table, n]) => `  ${table}  ${n} rows`);
  return `Postgres ${manifest.kind === "postgres-data" ? "backup" : "keyring"} ${manifest.backupId} of schema ${manifest.schema}, made ${manifest.createdAt} by Parley ${manifest.parleyVersion}; dump ${manifest.dump.size} bytes sha256 ${manifest.dump.sha256}\n${rows.join("\n")}\n`;
}

function describe(manifest: BackupManifest): string {
  const lines = manifest.databases.map((d) => `  ${d.name}  schema ${d.schemaVersion}  ${d.size} bytes  sha256 ${d.sha256}`);
  return `backup made ${manifest.createdAt} by Parley ${manifest.parleyVersion}\n${lines.join("\n")}\n`;
}

/** `parley backup FILE` and `parley backup verify FILE`. */
export async function backupCommand(args: string[]): Promise<void> {
  if (args[0] === "verify") {
    // Either kind of backup; a Postgres one needs no database to be checked.
    const parsed = parse(args.slice(1), 1);
    const file = parsed.files[0] as string;
    await withContext(parsed, async (context) => {
      const masterKeys = await rawMasterKeys(context);
      const described = (await isPostgresBackup(file, masterKeys)) ? describePostgres(await readPostgresBackup(file, masterKeys)) : describe(await verifyBackup(file, masterKeys));
      process.stdout.write(`OK: ${file} is intact\n${described}`);
    });
    return;
  }
  await withFile(args, async ({ file, context: { config, now }, keyring, masterKeys }) => {
    if (config.store.databaseUrl && keyring) {
      const made = await createPostgresBackup({ now, databaseUrl: config.store.databaseUrl, workDir: config.dataDir, masterKey: masterKeys[0] as Uint8Array, out: file, keyringOut: keyring });
      process.stdout.write(`wrote ${file} and ${keyring} (encrypted with a key derived from the master key)\n${describePostgres(made.data)}${describePostgres(made.keyring)}`);
      process.stderr.write(`NOT INCLUDED: the key files (${config.keysDir}). Keep ${keyring} apart from the data backups, with a short retention.\n`);
      return;
    }
    const manifest = await createBackup({ now, dataDir: config.dataDir, masterKey: masterKeys[0] as Uint8Array, out: file });
    process.stdout.write(`wrote ${file} (encrypted with a key derived from the master key)\n${describe(manifest)}`);
    process.stderr.write(`NOT INCLUDED: ${NOT_BACKED_UP} (${config.keysDir}).\n`);
  });
}

/** `parley restore FILE` and `parley restore --resume`. */
export async function restoreCommand(args: string[]): Promise<void> {
  if (args.includes("--resume")) {
    const parsed = parse(
      args.filter((arg) => arg !== "--resume"),
      0,
    );
    await withContext(parsed, async (context) => {
      const { config } = context;
      const result = await resumeRestore(config.dataDir, ledgerReplay(context));
      const aside = result.movedAsideTo ? `the previous databases are in ${result.movedAsideTo}` : "the data directory held no databases";
      process.stdout.write(`finished the restore of ${result.marker.backup} into ${config.dataDir}; ${aside}\n${result.ledger}\n`);
    });
    return;
  }
  await withFile(args, async ({ file, context, keyring, masterKeys }) => {
    const { config } = context;
    const replay = ledgerReplay(context);
    if (config.store.databaseUrl && keyring) {
      const restored = await restorePostgresBackup({ now: context.now, file, keyringFile: keyring, databaseUrl: config.store.databaseUrl, dataDir: config.dataDir, masterKeys, replayLedger: replay });
      // A later keyring of the deployment: what it holds no key for was destroyed after the backup.
      const destroyed = restored.destroyedSince.length > 0 ? `${restored.destroyedSince.length} conversations destroyed since this backup: not restored [${restored.destroyedSince.join(", ")}]\n` : "";
      process.stdout.write(`restored ${file} and ${keyring} into schema ${restored.schema} (every table's row count checked)\n${describePostgres(restored.manifest)}${destroyed}${restored.ledger}\n`);
      return;
    }
    const result = await restoreBackup({ now: context.now, file, dataDir: config.dataDir, masterKeys, replayLedger: replay });
    const aside = result.movedAsideTo ? `the previous databases are in ${result.movedAsideTo}` : "the data directory held no databases";
    process.stdout.write(`restored ${file} into ${config.dataDir}; ${aside}\n${describe(result.manifest)}${result.ledger}\n`);
  });
}

/** `parley ledger replay`: the step after any restore of the data (the server also replays at start). */
export async function ledgerCommand(args: string[]): Promise<void> {
  if (args[0] !== "replay") throw new ConfigError(`usage:\n${BACKUP_USAGE}`);
  await withContext(parse(args.slice(1), 0), async (context) => {
    const server = await runningServer(context.config.dataDir);
    if (server) throw new BackupError(`a Parley server (pid ${server.pid}) is running on ${context.config.dataDir}: it replayed the ledger when it started`);
    process.stdout.write(`${await ledgerReplay(context)()}\n`);
  });
}
