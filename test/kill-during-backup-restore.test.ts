// SIGKILL during a restore and during a backup (the CLI's, and the one `parley serve` schedules):
// afterwards the data directory holds the old databases or the backup's, never a mix, and a server
// starts on it, or refuses with exit 3 naming the way out (`parley restore --resume`), which then
// finishes the restore. A backup file is the previous one or a complete new one, never half.

import { createHash } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, rm, stat, watch } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { EMBEDDED_DATABASES } from "../server/backup/embedded-databases.ts";
import { RESTORE_MARKER } from "../server/backup/restore-backup.ts";
import { writeAcked } from "./helpers/acked-writes.ts";
import { type ChildServer, childToken, startChildServer } from "./helpers/child-server.ts";
import { runParley, spawnParley } from "./helpers/parley-cli.ts";

const dirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

type DatabaseHashes = Record<string, string | null>;

/** Each embedded database's SHA-256 (null when absent): which state the data directory is in. */
async function databaseHashes(dataDir: string): Promise<DatabaseHashes> {
  const hashes: DatabaseHashes = {};
  for (const { name } of EMBEDDED_DATABASES) {
    const bytes = await readFile(path.join(dataDir, name)).catch(() => null);
    hashes[name] = bytes ? createHash("sha256").update(bytes).digest("hex") : null;
  }
  return hashes;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function stop(server: ChildServer): Promise<void> {
  server.process.kill("SIGTERM");
  await server.exited;
}

/** Starts `parley serve` on `dataDir` and stops it again; resolves with the refusal when it would not start. */
async function startsOrRefuses(dataDir: string): Promise<"started" | string> {
  try {
    await stop(await startChildServer(dataDir));
    return "started";
  } catch (error) {
    return String(error);
  }
}

/** Kills `child` with SIGKILL `delayMs` after `file` (in `dir`) first appears, or after `delayMs` when `file` is null. */
async function killWhen(child: ReturnType<typeof spawnParley>, dir: string, file: string | null, delayMs: number): Promise<void> {
  if (file !== null) {
    const abort = new AbortController();
    void child.exited.then(() => abort.abort());
    try {
      for await (const event of watch(dir, { signal: abort.signal })) {
        if (event.filename?.startsWith(file)) break;
      }
    } catch {
      // The command ended before the file appeared: nothing left to interrupt.
    }
    abort.abort();
  }
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.process.kill("SIGKILL");
  await child.exited;
}

let prepared: string;
let backupFile: string;
let oldState: DatabaseHashes;
let backupState: DatabaseHashes;

beforeAll(async () => {
  prepared = await tempDir("parley-kill-restore-");
  backupFile = path.join(await tempDir("parley-kill-backups-"), "state.parley-backup");
  const first = await startChildServer(prepared);
  const token = await childToken(prepared, "ann", "o", { before: "writer", after: "writer" });
  await writeAcked(first, token, "before", 20);
  await stop(first);
  const made = await runParley(["backup", backupFile, "--data-dir", prepared]);
  expect(made.code, made.stderr).toBe(0);
  // The backup's state, as it will be in the data directory once restored.
  const restored = await tempDir("parley-kill-restored-");
  await cp(prepared, restored, { recursive: true });
  expect((await runParley(["restore", backupFile, "--data-dir", restored])).code).toBe(0);
  backupState = await databaseHashes(restored);
  const second = await startChildServer(prepared);
  await writeAcked(second, token, "after", 20);
  await stop(second);
  oldState = await databaseHashes(prepared);
  expect(oldState).not.toEqual(backupState);
}, 300_000);

// A kill at a random moment (mostly before or after the swap: it takes milliseconds of seconds),
// and kills timed from the moment the swap begins (its marker appears), the window that matters.
const RESTORE_KILLS: { trigger: string | null; delayMs: () => number }[] = [
  { trigger: null, delayMs: () => 500 + Math.floor(Math.random() * 4000) },
  { trigger: RESTORE_MARKER, delayMs: () => 0 },
  { trigger: RESTORE_MARKER, delayMs: () => Math.floor(Math.random() * 20) },
  { trigger: ".restore-", delayMs: () => Math.floor(Math.random() * 200) },
];

it.each(RESTORE_KILLS.map((kill, i) => [i, kill] as const))(
  "a restore killed (case %i) leaves the old state or the backup's, and a server starts on it or names the way out",
  async (_i, kill) => {
    const dataDir = await tempDir("parley-kill-restore-run-");
    await cp(prepared, dataDir, { recursive: true });
    const restore = spawnParley(["restore", backupFile, "--data-dir", dataDir]);
    await killWhen(restore, dataDir, kill.trigger, kill.delayMs());

    const midSwap = await exists(path.join(dataDir, RESTORE_MARKER));
    if (midSwap) {
      // Killed mid-swap: the server refuses (exit 3) and says how to finish.
      const refusal = await startsOrRefuses(dataDir);
      expect(refusal).toContain("server exited (3)");
      expect(refusal).toContain("refusing to start");
      expect(refusal).toContain("parley restore --resume");
      const resumed = await runParley(["restore", "--resume", "--data-dir", dataDir]);
      expect(resumed.stderr).toBe("");
      expect(resumed.code).toBe(0);
      expect(await databaseHashes(dataDir)).toEqual(backupState);
    } else {
      const state = await databaseHashes(dataDir);
      expect([oldState, backupState]).toContainEqual(state);
    }
    expect(await startsOrRefuses(dataDir)).toBe("started");
  },
  240_000,
);

it("a backup killed at any moment leaves the previous backup file intact, and the server starts", async () => {
  const dataDir = await tempDir("parley-kill-backup-run-");
  await cp(prepared, dataDir, { recursive: true });
  const out = path.join(await tempDir("parley-kill-backup-out-"), "kept.parley-backup");
  expect((await runParley(["backup", out, "--data-dir", dataDir])).code).toBe(0);
  const previous = createHash("sha256").update(await readFile(out)).digest("hex");
  for (const kill of [
    { trigger: null, delayMs: 500 + Math.floor(Math.random() * 4000) },
    { trigger: ".backup-", delayMs: Math.floor(Math.random() * 50) },
    { trigger: "kept.parley-backup.", delayMs: Math.floor(Math.random() * 20) },
  ]) {
    const backup = spawnParley(["backup", out, "--data-dir", dataDir]);
    await killWhen(backup, kill.trigger === ".backup-" ? dataDir : path.dirname(out), kill.trigger, kill.delayMs);
    const now = createHash("sha256").update(await readFile(out)).digest("hex");
    if (now !== previous) {
      // The kill came after the rename: the new file is whole.
      const verified = await runParley(["backup", "verify", out, "--data-dir", dataDir]);
      expect(verified.code, verified.stderr).toBe(0);
    }
    expect(await databaseHashes(dataDir)).toEqual(oldState);
  }
  // The next backup clears what the killed ones left (their copies of every database, their temporary files).
  expect((await runParley(["backup", out, "--data-dir", dataDir])).code).toBe(0);
  expect((await readdir(dataDir)).filter((name) => name.startsWith(".backup-"))).toEqual([]);
  expect(await readdir(path.dirname(out))).toEqual(["kept.parley-backup"]);
  expect(await startsOrRefuses(dataDir)).toBe("started");
}, 300_000);

it("a server killed during its scheduled backup and drill keeps only whole backups, and starts again", async () => {
  const dataDir = await tempDir("parley-kill-scheduled-");
  await cp(prepared, dataDir, { recursive: true });
  const backups = await tempDir("parley-kill-scheduled-out-");
  const env = { PARLEY_BACKUP_DIR: backups, PARLEY_BACKUP_DRILL_EVERY: "1" };
  const server = await startChildServer(dataDir, env);
  // The first scheduled backup runs at start: kill when its file appears, at a random moment after.
  const child = { process: server.process, exited: server.exited };
  await killWhen(child, backups, "parley-", Math.floor(Math.random() * 300));
  for (const name of await readdir(backups)) {
    if (!name.endsWith(".pbk")) continue;
    const verified = await runParley(["backup", "verify", path.join(backups, name), "--data-dir", dataDir]);
    expect(verified.code, `${name}: ${verified.stderr}`).toBe(0);
  }
  const again = await startChildServer(dataDir, env);
  // Its own first backup is whole, and verifies.
  await vi.waitFor(async () => expect((await readdir(backups)).filter((name) => name.endsWith(".pbk")).length).toBeGreaterThan(0), { timeout: 60_000, interval: 200 });
  await stop(again);
  for (const name of (await readdir(backups)).filter((n) => n.endsWith(".pbk"))) {
    expect((await runParley(["backup", "verify", path.join(backups, name), "--data-dir", dataDir])).code).toBe(0);
  }
}, 300_000);
