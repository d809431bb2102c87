// `parley backup verify` and `parley restore`. Verification reads the whole file (every chunk
// authenticated, the file checksum, the manifest, each database's size and SHA-256) and writes
// nothing. A restore verifies first, then extracts into a private folder in the data directory
// (checking everything again as it goes), and only then moves the current databases aside into
// `pre-restore-<time>/` (never deleting them) and renames the backup's into place. Finally the
// deletion ledger is replayed, so a backup never brings back what was destroyed after it was made.

import { createHash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { clearAcknowledgedHeads } from "../store/acknowledged-heads.ts";
import { access, mkdir, mkdtemp, open, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { syncDirectory } from "../platform/sync-directory.ts";
import { finished } from "node:stream/promises";
import { DELETION_LEDGER_FILE, readLedgerFile } from "../lifecycle/deletion-ledger.ts";
import { KEYRING_FILE } from "../store/keyring.ts";
import { BackupError, readBackupFile } from "./backup-file.ts";
import { type BackupManifest, checkManifestLength, decodeManifest } from "./backup-manifest.ts";
import { companionFiles, EMBEDDED_DATABASES } from "./embedded-databases.ts";
import { runningServer } from "./server-lock.ts";

/** Pulls exact byte counts out of the decrypted chunk stream. */
export class PayloadReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly chunks: AsyncGenerator<Buffer>) {}

  /** The next `length` bytes, or fewer at the end of the payload. */
  async take(length: number): Promise<Buffer> {
    while (this.buffered.length < length) {
      const next = await this.chunks.next();
      if (next.done) break;
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, next.value]) : next.value;
    }
    const taken = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(taken.length);
    return taken;
  }

  /** Passes the next `length` bytes to `sink` piece by piece (at most one chunk in memory). */
  async pipe(length: number, sink: (piece: Buffer) => Promise<void>): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.buffered.length === 0) {
        const next = await this.chunks.next();
        if (next.done) throw new BackupError("backup payload ends before its last database");
        this.buffered = next.value;
      }
      const piece = this.buffered.subarray(0, left);
      this.buffered = this.buffered.subarray(piece.length);
      left -= piece.length;
      await sink(piece);
    }
  }

  /** The manifest's JSON at the head of the payload: its length prefix, then that many bytes. */
  async manifestJson(): Promise<Buffer> {
    const lengthBytes = await this.take(4);
    if (lengthBytes.length !== 4) throw new BackupError("backup payload is too short for a manifest");
    const length = lengthBytes.readUInt32BE(0);
    checkManifestLength(length);
    const json = await this.take(length);
    if (json.length !== length) throw new BackupError("backup payload is too short for its manifest");
    return json;
  }

  /** Fails unless the payload has been read exactly to its end (and the file checksum matched). */
  async end(): Promise<void> {
    if (this.buffered.length > 0 || !(await this.chunks.next()).done) throw new BackupError("backup payload holds more than its manifest lists");
  }
}

/**
 * Reads and checks a whole backup file. `extractTo`, when given, receives each database as a file
 * of that folder; the files are trustworthy only once this function has returned.
 */
async function readBackup(file: string, masterKeys: readonly Uint8Array[], extractTo?: string): Promise<BackupManifest> {
  const handle = await open(file, "r").catch((error: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot open backup ${file}: ${error.code ?? error.message}`);
  });
  try {
    const reader = new PayloadReader(readBackupFile(handle, masterKeys));
    const manifest = decodeManifest(await reader.manifestJson());
    for (const database of manifest.databases) {
      const hash = createHash("sha256");
      const out: WriteStream | null = extractTo ? createWriteStream(path.join(extractTo, database.name), { flags: "wx", mode: 0o600 }) : null;
      try {
        await reader.pipe(database.size, async (piece) => {
          hash.update(piece);
          if (out && !out.write(piece)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
        });
      } finally {
        out?.end();
        if (out) await finished(out);
      }
      if (hash.digest("hex") !== database.sha256) throw new BackupError(`${database.name} in the backup does not match its SHA-256`);
    }
    await reader.end();
    return manifest;
  } finally {
    await handle.close();
  }
}

/** Checks a backup file without restoring it; returns its manifest or throws {@link BackupError}. */
export function verifyBackup(file: string, masterKeys: readonly Uint8Array[]): Promise<BackupManifest> {
  return readBackup(file, masterKeys);
}

export interface RestoreOptions {
  file: string;
  dataDir: string;
  /** The master keys this installation holds (current and retired); the file names the one it needs. */
  masterKeys: readonly Uint8Array[];
  /**
   * Destroys again what the deletion ledger records (F1's lifecycle module); runs after the
   * databases are in place and before any server starts on them.
   */
  replayLedger: (dataDir: string) => Promise<string>;
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** Where the databases that were in the data directory now are. */
  movedAsideTo: string | null;
  /** What the ledger replay reported. */
  ledger: string;
}

/** Restores a backup into a data directory no server is running on. */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const { dataDir } = options;
  const refuseIfRunning = async () => {
    const server = await runningServer(dataDir);
    if (server) throw new BackupError(`a Parley server (pid ${server.pid}, started ${server.startedAt}) is running on ${dataDir}: stop it before restoring`);
  };
  await refuseIfRunning();
  // Nothing in the data directory is touched until the whole file has proved intact, and until the
  // ledger that must follow the restore has proved readable (a damaged one could not be replayed).
  await readLedgerFile(path.join(dataDir, DELETION_LEDGER_FILE)).catch((error: Error) => {
    throw new BackupError(`${error.message}: the restore needs an intact deletion ledger and has changed nothing`);
  });
  // Data without its keyring cannot be decrypted, and the ledger replay would start an empty one.
  if (!(await access(path.join(dataDir, KEYRING_FILE)).then(() => true, () => false))) {
    throw new BackupError(`no ${KEYRING_FILE} in ${dataDir}: put back the keyring of data keys (kept apart from data backups) before restoring`);
  }
  await verifyBackup(options.file, options.masterKeys);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(path.join(dataDir, ".restore-"));
  try {
    const manifest = await readBackup(options.file, options.masterKeys, staging);
    await refuseIfRunning(); // a server may have started while the file was read
    const movedAsideTo = await moveAside(dataDir);
    for (const database of manifest.databases) await rename(path.join(staging, database.name), path.join(dataDir, database.name));
    // A deliberate rollback: what was acknowledged after the backup is gone on purpose.
    await clearAcknowledgedHeads(dataDir);
    await syncDirectory(dataDir);
    const ledger = await options.replayLedger(dataDir);
    return { manifest, movedAsideTo, ledger };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Moves every current database and its WAL/SHM companions into `pre-restore-<time>/`. */
async function moveAside(dataDir: string): Promise<string | null> {
  const present = new Set(await readdir(dataDir));
  const moving = EMBEDDED_DATABASES.flatMap((database) => companionFiles(database.name)).filter((name) => present.has(name));
  if (moving.length === 0) return null;
  const aside = path.join(dataDir, `pre-restore-${new Date().toISOString().replaceAll(":", "-")}`);
  await mkdir(aside, { mode: 0o700 });
  for (const name of moving) await rename(path.join(dataDir, name), path.join(aside, name));
  return aside;
}

