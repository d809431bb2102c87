// A running server announces itself in `<dataDir>/server.pid`, so `parley restore` can refuse to
// swap databases under it. The file says who holds the data directory; it does not stop a second
// server from starting (several test and cluster setups reuse a directory after a crash), and a
// file left by a crashed server is recognised as stale because its process is gone.

import { randomBytes } from "node:crypto";
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

export const SERVER_LOCK_FILE = "server.pid";

/** Who holds a data directory. */
export interface ServerLock {
  pid: number;
  /** ISO time the server started. */
  startedAt: string;
}

/** Whether a process with this id exists (EPERM: it exists, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Records this process as the data directory's server; `release()` removes the record if still ours. */
export async function holdServerLock(dataDir: string): Promise<{ release(): Promise<void> }> {
  const file = path.join(dataDir, SERVER_LOCK_FILE);
  const lock: ServerLock = { pid: process.pid, startedAt: new Date().toISOString() };
  const content = `${JSON.stringify(lock)}\n`;
  // Written whole then renamed in, so a reader never sees half a record.
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temp, content, { mode: 0o600 });
  await rename(temp, file);
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
