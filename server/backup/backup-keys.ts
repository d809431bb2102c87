// The master keys backups need, as the server configures them (crypto/master-key.ts: PARLEY_MASTER_KEY,
// PARLEY_MASTER_KEY_FILE, or <keysDir>/master.key plus the keys retired by rotation). The backup
// commands never generate a master key: a fresh one could open neither an old backup nor the store.

import { loadMasterKeys, type MasterKeyring } from "../crypto/master-key.ts";
import type { Config } from "../platform/config.ts";
import { BackupError } from "./backup-file.ts";

/** The configured master keyring (current key first); refuses when none is configured or on disk. */
export async function configuredMasterKeys(config: Pick<Config, "keysDir" | "masterKey">): Promise<MasterKeyring> {
  const loaded = await loadMasterKeys({ ...config.masterKey, keysDir: config.keysDir });
  if (loaded.generated) {
    throw new BackupError(`no master key (PARLEY_MASTER_KEY, PARLEY_MASTER_KEY_FILE or ${config.keysDir}/master.key): put back the key files first`);
  }
  return loaded.ring;
}

/** The raw master keys, current first: backups are made with the first and opened with any. */
export async function backupMasterKeys(config: Pick<Config, "keysDir" | "masterKey">): Promise<Uint8Array[]> {
  return (await configuredMasterKeys(config)).keys.map((k) => k.key);
}
