// The `parley keys` commands: `keys rotate-master` makes a new master key, re-wraps every data
// key under it (the data is never rewritten) and retires the old key once nothing uses it. Safe
// while servers run, provided they read the master key from <keysDir>/master.key (PARLEY_KEYS_DIR,
// shared by every node), not from PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE.

import { parseArgs } from "node:util";
import { ConfigError } from "../platform/config.ts";
import { rotateMasterKey } from "../store/master-rotation.ts";
import { withCliContext } from "./cli-context.ts";

export const KEYS_USAGE = `  parley keys rotate-master [--data-dir DIR]
                                    new master key in <keysDir>/master.key; re-wraps every data
                                    key (no data rewritten); once unused, the old key moves to
                                    <keysDir>/retired-master-keys/ (kept for old backups)`;

export async function keysCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== "rotate-master") throw new ConfigError(`usage:\n${KEYS_USAGE}`);
  const { values } = parseArgs({ args: rest, options: { "data-dir": { type: "string" } }, strict: true });
  await withCliContext({ dataDir: values["data-dir"] }, async ({ config, keyringTable }) => {
    if (config.masterKey.value || config.masterKey.file) {
      throw new ConfigError(
        "keys rotate-master rotates <keysDir>/master.key; with PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE set, the key lives outside Parley: unset them to use the key file",
      );
    }
    const result = await rotateMasterKey(config.keysDir, await keyringTable());
    process.stdout.write(
      `master key ${result.previousId} -> ${result.newId}; re-wrapped ${result.rewrapped} data keys; retired ${result.retired.join(", ") || "none"}\n`,
    );
  });
}
