// Where backup meets two neighbours still being built: the master key (engineer C's
// server/auth/master-key.ts) and the deletion-ledger replay (engineer F1's server/lifecycle/).
// Both are reached only through this module, so wiring the real ones changes nothing else.

import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { readOrCreate } from "../auth/keys.ts";
import type { Config } from "../config.ts";
import { DELETION_LEDGER_FILE, readLedgerFile } from "../lifecycle/deletion-ledger.ts";
import { BackupError } from "./backup-file.ts";

/**
 * The master keys backups are derived from, the current one first: `<keysDir>/master.key`.
 * Only `backup` may create it (`create`): verify and restore need the key the backup was made
 * with, and a fresh random one would only make them fail later with a vaguer message.
 * HOOK: until server/auth/master-key.ts lands, this reads (or creates, mode 0600) that file itself;
 * then it calls the real loader, which also honours a key given through configuration.
 */
export async function loadMasterKeys(config: Pick<Config, "keysDir">, options: { create: boolean }): Promise<Uint8Array[]> {
  const file = path.join(config.keysDir, "master.key");
  if (!options.create) {
    const key = await readFile(file).catch(() => {
      throw new BackupError(`no master key at ${file}: put back the key files the backup was made with first`);
    });
    return [checked(file, key)];
  }
  await mkdir(config.keysDir, { recursive: true, mode: 0o700 });
  return [checked(file, await readOrCreate(file, () => randomBytes(32)))];
}

function checked(file: string, key: Buffer): Uint8Array {
  if (key.length < 32) throw new Error(`${file} must hold at least 32 bytes`);
  return new Uint8Array(key);
}

/**
 * Replays the deletion ledger over freshly restored databases; returns a line for the operator.
 * HOOK: until F1's replayDeletionLedger() lands, this verifies the ledger (a damaged one stops the
 * restore's report with an error) and says loudly that nothing was replayed.
 */
export async function replayLedgerAfterRestore(dataDir: string): Promise<string> {
  const entries = await readLedgerFile(path.join(dataDir, DELETION_LEDGER_FILE));
  if (entries.length === 0) return "deletion ledger: empty, nothing to replay";
  return `deletion ledger: ${entries.length} entries NOT replayed (replay not available yet): run \`parley ledger replay\` before serving`;
}
