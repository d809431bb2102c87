// The `parley keys` commands: `keys rotate-master` makes a new master key, re-wraps every data
// key under it (the data is never rewritten) and retires the old key once nothing uses it. Safe
// while servers run, provided they read the master key from <keysDir>/master.key (PARLEY_KEYS_DIR,
// shared by every node), not from PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE.

import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../platform/config.ts";
import { KEYRING_FILE } from "../store/keyring.ts";
import { postgresKeyringTable, rotateMasterKey, sqliteKeyringTable } from "../store/master-rotation.ts";

export const KEYS_USAGE = `  parley keys rotate-master [--data-dir DIR]
                                    new master key in <keysDir>/master.key; re-wraps every data
                                    key (no data rewritten); once unused, the old key moves to
                                    <keysDir>/retired-master-keys/ (kept for old backups)`;

export async function keysCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== "rotate-master") throw new ConfigError(`usage:\n${KEYS_USAGE}`);
  const { values } = parseArgs({ args: rest, options: { "data-dir": { type: "string" } }, strict: true });
  const env = values["data-dir"] ? { ...process.env, PARLEY_DATA_DIR: values["data-dir"] } : process.env;
  const config = loadConfig(env);
  if (config.masterKey.value || config.masterKey.file) {
    throw new ConfigError(
      "keys rotate-master rotates <keysDir>/master.key; with PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE set, the key lives outside Parley: unset them to use the key file",
    );
  }
  const table = config.store.databaseUrl
    ? await postgresKeyringTable(config.store.databaseUrl)
    : sqliteKeyringTable(path.join(config.dataDir, KEYRING_FILE));
  try {
    const result = await rotateMasterKey(config.keysDir, table);
    process.stdout.write(
      `master key ${result.previousId} -> ${result.newId}; re-wrapped ${result.rewrapped} data keys; retired ${result.retired.join(", ") || "none"}\n`,
    );
  } finally {
    await table.close();
  }
}
