// `parley backup`: a consistent copy of every embedded database while the server runs, written as
// one encrypted file. Each database is copied with SQLite's online backup API from this process
// (its own connection, WAL-safe): the copy is taken in ONE backup step, inside one read
// transaction, so it is a single consistent snapshot and concurrent writes never restart it.
// The copies go to a private folder in the data directory (as protected as the live files), are
// hashed, then streamed through the encrypting writer 1 MiB at a time: no database is ever held in
// memory, at the cost of disk room for one copy of the databases while the backup runs. A backup
// killed half-way leaves its folder (named with its pid) and temporary file: the next backup
// removes those of processes no longer alive, and the previous backup file is never touched.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { access, mkdtemp, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import Database from "better-sqlite3";
import { BackupError, BackupFileWriter } from "./backup-file.ts";
import { type BackedUpDatabase, type BackupManifest, encodeManifest, parleyVersion } from "./backup-manifest.ts";
import { EMBEDDED_DATABASES, NOT_BACKED_UP, readSchemaVersion } from "./embedded-databases.ts";
import { processAlive } from "./server-lock.ts";
import { type Clock, systemClock } from "../platform/clock.ts";

/** Pages per online-backup step: all of them, so the copy is one snapshot (see the file comment). */
const ALL_PAGES = 0x7fffffff;

export interface BackupOptions {
  dataDir: string;
  /** The clock the manifest's createdAt is read from (the server's or the CLI's; default: the system's). */
  now?: Clock;
  /** The master key; the backup's own key is derived from it. */
  masterKey: Uint8Array;
  /** The backup file to write (replaced atomically if it exists). */
  out: string;
  /** Called with each database's consistent copy before it is encrypted (the scheduler counts its rows). */
  inspectSnapshot?: (name: string, file: string) => void;
}

const exists = (file: string) => access(file).then(
  () => true,
  () => false,
);

/** Copies one live database into `target` through its own connection to the live file. */
async function snapshot(source: string, target: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    await db.backup(target, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
}

/** A file's size and SHA-256, read 1 MiB at a time. */
export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return { size: (await stat(file)).size, sha256: hash.digest("hex") };
}

/** Removes `<prefix><pid>-…` work folders and temporary files in `dir` left by backups that were killed. */
async function removeAbandoned(dir: string, prefix: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = name.startsWith(prefix) ? /^(\d+)-/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid !== undefined && Number(pid) !== process.pid && !processAlive(Number(pid))) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/** Writes a backup of the data directory's databases to `options.out`; returns its manifest. */
export async function createBackup(options: BackupOptions): Promise<BackupManifest> {
  const present = [];
  for (const database of EMBEDDED_DATABASES) {
    if (await exists(path.join(options.dataDir, database.name))) present.push(database);
  }
  if (present.length === 0) throw new BackupError(`no Parley database in ${options.dataDir}`);
  await removeAbandoned(options.dataDir, ".backup-");
  await removeAbandoned(path.dirname(options.out), `${path.basename(options.out)}.`);
  const work = await mkdtemp(path.join(options.dataDir, `.backup-${process.pid}-`));
  const temp = `${options.out}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  try {
    const databases: BackedUpDatabase[] = [];
    for (const database of present) {
      const copy = path.join(work, database.name);
      await snapshot(path.join(options.dataDir, database.name), copy);
      options.inspectSnapshot?.(database.name, copy);
      const schemaVersion = readSchemaVersion(copy, database);
      databases.push({ name: database.name, schemaVersion, ...(await hashFile(copy)) });
    }
    const manifest: BackupManifest = {
      format: 1,
      createdAt: new Date((options.now ?? systemClock)()).toISOString(),
      parleyVersion: await parleyVersion(),
      notIncluded: NOT_BACKED_UP,
      databases,
    };
    const handle = await open(temp, "wx", 0o600);
    try {
      const writer = new BackupFileWriter(handle, options.masterKey);
      await writer.write(encodeManifest(manifest));
      for (const database of databases) {
        for await (const chunk of createReadStream(path.join(work, database.name), { highWaterMark: 1 << 20 })) {
          await writer.write(chunk as Buffer);
        }
      }
      await writer.finish();
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, options.out);
    return manifest;
  } finally {
    await rm(work, { recursive: true, force: true });
    await unlink(temp).catch(() => undefined);
  }
}
