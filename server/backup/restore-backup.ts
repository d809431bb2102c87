// `parley backup verify` and `parley restore`. Verification reads the whole file (every chunk
// authenticated, the file checksum, the manifest, each database's size and SHA-256) and writes
// nothing. A restore verifies first, then extracts into a private folder in the data directory
// (checking everything again as it goes), and only then moves the current databases aside into
// `pre-restore-<time>/` (never deleting them) and renames the backup's into place. Finally the
// deletion ledger is replayed, so a backup never brings back what was destroyed after it was made.
// The swap is several renames: a marker file (restore-in-progress.json) written before the first
// and removed after the last makes a restore killed in between visible. A server refuses to start
// on it (exit 3) and `parley restore --resume` finishes the swap, so the data directory is the
// old state or the backup's, never a mix of both.

import { createHash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { access, mkdir, mkdtemp, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import path from "node:path";
import { syncDirectory } from "../platform/sync-directory.ts";
import { finished } from "node:stream/promises";
import { DELETION_LEDGER_FILE, readLedgerFile } from "../lifecycle/deletion-ledger.ts";
import { writePrivateTemp } from "../crypto/keys.ts";
import { clearAcknowledgedHeads } from "../store/acknowledged-heads.ts";
import { KEYRING_FILE } from "../store/keyring.ts";
import { BackupError, readBackupFile } from "./backup-file.ts";
import { type BackupManifest, checkManifestLength, decodeManifest } from "./backup-manifest.ts";
import { companionFiles, EMBEDDED_DATABASES } from "./embedded-databases.ts";
import { runningServer } from "./server-lock.ts";
import { type Clock, systemClock } from "../platform/clock.ts";

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
  /** The clock the restore marker's times are read from (the CLI's or the drill's; default: the system's). */
  now?: Clock;
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

/** The file that marks a restore between its first and last rename. */
export const RESTORE_MARKER = "restore-in-progress.json";

/** What the marker records: enough to finish the swap after a kill. */
export interface RestoreMarker {
  format: "parley/restore/v1";
  /** The backup file being restored. */
  backup: string;
  startedAt: string;
  /** Folder names inside the data directory: the backup's verified databases, the previous ones. */
  staging: string;
  aside: string;
  /** The databases the backup holds. */
  databases: string[];
  /** "moving-aside": the previous databases are being moved out; "moving-in": the backup's are being moved in. */
  phase: "moving-aside" | "moving-in";
}

/** The marker of an interrupted restore in `dataDir`, or null. */
export async function interruptedRestore(dataDir: string): Promise<RestoreMarker | null> {
  const text = await readFile(path.join(dataDir, RESTORE_MARKER), "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });
  if (text === null) return null;
  const marker = JSON.parse(text) as Partial<RestoreMarker>;
  if (marker.format !== "parley/restore/v1" || typeof marker.staging !== "string" || typeof marker.aside !== "string" || !Array.isArray(marker.databases)) {
    throw new BackupError(`${path.join(dataDir, RESTORE_MARKER)} is not a restore marker`);
  }
  return marker as RestoreMarker;
}

/** What an operator is told about an interrupted restore (the server's refusal says the same). */
export function describeInterruptedRestore(dataDir: string, marker: RestoreMarker): string {
  return `a restore of ${marker.backup} (started ${marker.startedAt}) was interrupted in ${dataDir}: run \`parley restore --resume\` to finish it (the previous databases are in ${path.join(dataDir, marker.aside)})`;
}

async function writeMarker(dataDir: string, marker: RestoreMarker): Promise<void> {
  const file = path.join(dataDir, RESTORE_MARKER);
  await rename(await writePrivateTemp(file, Buffer.from(JSON.stringify(marker))), file);
  await syncDirectory(dataDir);
}

/** Restores a backup into a data directory no server is running on. */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const { dataDir } = options;
  await refuseIfRunning(dataDir);
  const interrupted = await interruptedRestore(dataDir);
  if (interrupted) throw new BackupError(describeInterruptedRestore(dataDir, interrupted));
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
  // Staging folders of restores killed before their swap began hold nothing anyone needs.
  for (const name of await readdir(dataDir)) {
    if (name.startsWith(".restore-")) await rm(path.join(dataDir, name), { recursive: true, force: true });
  }
  const staging = await mkdtemp(path.join(dataDir, ".restore-"));
  let swapping = false;
  try {
    const manifest = await readBackup(options.file, options.masterKeys, staging);
    await refuseIfRunning(dataDir); // a server may have started while the file was read
    const startedAt = new Date((options.now ?? systemClock)()).toISOString();
    const marker: RestoreMarker = {
      format: "parley/restore/v1",
      backup: path.resolve(options.file),
      startedAt,
      staging: path.basename(staging),
      aside: `pre-restore-${startedAt.replaceAll(":", "-")}`,
      databases: manifest.databases.map((database) => database.name),
      phase: "moving-aside",
    };
    await writeMarker(dataDir, marker);
    swapping = true;
    const movedAsideTo = await finishSwap(dataDir, marker);
    const ledger = await options.replayLedger(dataDir);
    return { manifest, movedAsideTo, ledger };
  } finally {
    // Once the swap began, the staged databases are what --resume moves in: they stay.
    if (!swapping) await rm(staging, { recursive: true, force: true });
  }
}

/** `parley restore --resume`: finishes the swap of a restore that was killed, then replays the ledger. */
export async function resumeRestore(dataDir: string, replayLedger: (dataDir: string) => Promise<string>): Promise<{ marker: RestoreMarker; movedAsideTo: string | null; ledger: string }> {
  await refuseIfRunning(dataDir);
  const marker = await interruptedRestore(dataDir);
  if (!marker) throw new BackupError(`no interrupted restore in ${dataDir} (no ${RESTORE_MARKER})`);
  const movedAsideTo = await finishSwap(dataDir, marker);
  return { marker, movedAsideTo, ledger: await replayLedger(dataDir) };
}

async function refuseIfRunning(dataDir: string): Promise<void> {
  const server = await runningServer(dataDir);
  if (server) throw new BackupError(`a Parley server (pid ${server.pid}, started ${server.startedAt}) is running on ${dataDir}: stop it before restoring`);
}

/**
 * The swap, from wherever a kill left it (every step may run again): the previous databases and
 * their WAL/SHM companions out into the aside folder, then the staged ones in, then the pins of
 * the previous state cleared (a deliberate rollback), and only then the marker removed.
 */
async function finishSwap(dataDir: string, marker: RestoreMarker): Promise<string | null> {
  const aside = path.join(dataDir, marker.aside);
  const staging = path.join(dataDir, marker.staging);
  if (marker.phase === "moving-aside") {
    // Nothing of the backup's is in place yet: every database file here is a previous one.
    await moveAside(dataDir, aside);
    await writeMarker(dataDir, { ...marker, phase: "moving-in" });
  }
  const staged = new Set(await readdir(staging).catch(() => [] as string[]));
  for (const name of marker.databases) {
    if (staged.has(name)) await rename(path.join(staging, name), path.join(dataDir, name));
  }
  await clearAcknowledgedHeads(dataDir);
  await syncDirectory(dataDir);
  await rm(staging, { recursive: true, force: true });
  await unlink(path.join(dataDir, RESTORE_MARKER));
  await syncDirectory(dataDir);
  return (await readdir(aside).catch(() => [] as string[])).length > 0 ? aside : null;
}

/** Moves every current database and its WAL/SHM companions into `aside` (created when needed). */
async function moveAside(dataDir: string, aside: string): Promise<void> {
  const present = new Set(await readdir(dataDir));
  const moving = EMBEDDED_DATABASES.flatMap((database) => companionFiles(database.name)).filter((name) => present.has(name));
  if (moving.length === 0) return;
  await mkdir(aside, { recursive: true, mode: 0o700 });
  for (const name of moving) await rename(path.join(dataDir, name), path.join(aside, name));
  await syncDirectory(aside);
}
