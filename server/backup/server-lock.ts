// A running server announces itself in `<dataDir>/server.pid`, so `parley restore` can refuse to
// swap databases under it and a second server on the same data directory refuses to start (two
// processes writing one database split its clients: neither sees the other's writes). The file
// is created exclusively (link(2) of a complete temporary file); one left by a crashed server is
// recognised as stale because its process is gone, and replaced.

import { randomBytes } from "node:crypto";
import { link, readFile, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { StartupRefusal } from "../platform/startup-refusal.ts";
import type { Clock } from "../platform/clock.ts";

export const SERVER_LOCK_FILE = "server.pid";

/** Who holds a data directory. */
export interface ServerLock {
  pid: number;
  /** ISO time the server started. */
  startedAt: string;
}

/** Whether a process with this id exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Records this process as the data directory's server; `release()` removes the record if still
 * ours. Refuses (StartupRefusal) while another live process holds the directory.
 */
export async function holdServerLock(dataDir: string, now: Clock): Promise<{ release(): Promise<void> }> {
  const file = path.join(dataDir, SERVER_LOCK_FILE);
  const lock: ServerLock = { pid: process.pid, startedAt: new Date(now()).toISOString() };
  const content = `${JSON.stringify(lock)}\n`;
  // Written whole, then linked in: creation is atomic and exclusive, and never half a record.
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temp, content, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, file);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw error;
      }
      const holder = await runningServer(dataDir);
      if (holder && holder.pid !== process.pid) {
        throw new StartupRefusal(
          `the data directory ${dataDir} is in use by a running server (pid ${holder.pid}, started ${holder.startedAt}); ` +
            "stop it first, or give this server its own PARLEY_DATA_DIR",
        );
      }
      // Left by a crashed server (or by this process before): take it over.
      await unlink(file).catch(() => undefined);
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return {
    async release() {
      const now = await readFile(file, "utf8").catch(() => null);
      if (now === content) await unlink(file).catch(() => undefined);
    },
  };
}

/** The live server holding `dataDir`, or null when none does (no record, or its process is gone). */
export async function runningServer(dataDir: string): Promise<ServerLock | null> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, SERVER_LOCK_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  let lock: ServerLock;
  try {
    lock = JSON.parse(text) as ServerLock;
  } catch {
    return null; // unreadable: not written by a live server (it writes the file whole)
  }
  return Number.isInteger(lock.pid) && lock.pid > 0 && processAlive(lock.pid) ? lock : null;
}
