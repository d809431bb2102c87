// Loss made loud: acknowledged writes that vanish from the log (here: the SQLite write-ahead log
// deleted after a kill -9, as an operator cleaning up "stray files" might) make the server refuse
// to start, naming the conversation and the entries missing, instead of serving a history with a
// hole in it. A clean stop, a destroyed conversation and a restore are not losses.

import { readFile, rm, unlink } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it, vi } from "vitest";
import { ACKED_HEADS_FILE, ACKED_HEADS_JOURNAL } from "../server/store/acknowledged-heads.ts";
import { writeAcked } from "./helpers/acked-writes.ts";
import { type ChildServer, childToken, startChildServer } from "./helpers/child-server.ts";
import { runParley } from "./helpers/parley-cli.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts `parley serve` and resolves with how it ended: listening (a server) or its exit code and stderr. */
async function tryStart(dataDir: string): Promise<{ server: ChildServer } | { refused: string }> {
  try {
    const server = await startChildServer(dataDir);
    cleanups.push(async () => {
      server.process.kill("SIGKILL");
      await server.exited;
    });
    return { server };
  } catch (error) {
    return { refused: String(error) };
  }
}

it("refuses to start when acknowledged writes are missing from the log, naming them, and starts once the loss is accepted", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "parley-loss-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const first = await tryStart(dataDir);
  if (!("server" in first)) throw new Error(first.refused);
  const token = await childToken(dataDir, "ann", "o", { ledger: "writer", untouched: "writer" });
  await writeAcked(first.server, token, "untouched", 5);
  // A clean stop and start is no loss.
  first.server.process.kill("SIGTERM");
  await first.server.exited;
  const second = await tryStart(dataDir);
  if (!("server" in second)) throw new Error(`a clean restart was refused: ${second.refused}`);
  const acked = await writeAcked(second.server, token, "ledger", 30);
  // The server pins what it acknowledged every few seconds: wait until this write is pinned.
  await vi.waitFor(
    async () => {
      const pins = JSON.parse(await readFile(path.join(dataDir, ACKED_HEADS_FILE), "utf8")) as { heads: Record<string, number> };
      expect(Object.values(pins.heads)).toContain(acked);
    },
    { timeout: 20_000, interval: 200 },
  );
  second.server.process.kill("SIGKILL");
  await second.server.exited;
  await unlink(path.join(dataDir, "parley.db-wal"));
  await unlink(path.join(dataDir, "parley.db-shm")).catch(() => undefined);

  const third = await tryStart(dataDir);
  expect("refused" in third).toBe(true);
  const refusal = "refused" in third ? third.refused : "";
  expect(refusal).toContain("refusing to start");
  expect(refusal).toContain("ledger");
  expect(refusal).toMatch(/entries \d+-30/);

  // The offline verifier reports the same loss, and fails, though what is left of the chain holds.
  const all = await runParley(["audit", "verify", "--all"], { PARLEY_DATA_DIR: dataDir });
  expect(all.code).toBe(1);
  expect(all.stdout).toMatch(/BEHIND {2}conversation:ledger: entries \d+-30 were acknowledged/);
  expect(all.stdout).not.toMatch(/BEHIND {2}conversation:untouched/);
  const other = await runParley(["audit", "verify", "--conversation", "untouched"], { PARLEY_DATA_DIR: dataDir });
  expect(other.stdout).not.toContain("BEHIND");
  expect(other.code).toBe(0);

  // Accepting the loss is a deliberate act: remove the evidence (both files), and the server starts.
  await unlink(path.join(dataDir, ACKED_HEADS_FILE));
  await unlink(path.join(dataDir, ACKED_HEADS_JOURNAL)).catch(() => undefined);
  expect((await runParley(["audit", "verify", "--all"], { PARLEY_DATA_DIR: dataDir })).code).toBe(0);
  const fourth = await tryStart(dataDir);
  expect("server" in fourth).toBe(true);
  // Four server starts and three CLI runs, each a process of its own.
}, 300_000);

it("refuses to start when writes acknowledged the instant before a kill -9 are missing (each commit is pinned before its acks)", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "parley-loss-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const first = await tryStart(dataDir);
  if (!("server" in first)) throw new Error(first.refused);
  const token = await childToken(dataDir, "ann", "o", { instant: "writer" });
  // No wait for the periodic pin: the kill follows the last acknowledgement at once.
  await writeAcked(first.server, token, "instant", 20);
  first.server.process.kill("SIGKILL");
  await first.server.exited;
  await unlink(path.join(dataDir, "parley.db-wal"));
  await unlink(path.join(dataDir, "parley.db-shm")).catch(() => undefined);

  const second = await tryStart(dataDir);
  const refusal = "refused" in second ? second.refused : "";
  expect(refusal).toContain("refusing to start");
  expect(refusal).toMatch(/instant \(entries \d+-20\)/);
}, 120_000);
