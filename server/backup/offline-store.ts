// The configured log store, opened by a command-line process rather than a server (ledger replay,
// verification): Postgres with DATABASE_URL, else the data directory's parley.db, with the audit
// key and the configured master keyring. Never generates a master key (see backup-keys.ts).

import path from "node:path";
import { loadOrCreateKeys } from "../crypto/keys.ts";
import type { Clock } from "../platform/clock.ts";
import type { Config } from "../platform/config.ts";
import { openPostgresStore } from "../store/postgres/postgres-store.ts";
import { openSqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import { configuredMasterKeys } from "./backup-keys.ts";

/** Opens the store `config` names, stamping what it writes by `now`; the caller closes it. */
export async function openOfflineStore(config: Config, now: Clock): Promise<Store> {
  const { auditKey } = await loadOrCreateKeys(config.keysDir);
  const masterKeys = await configuredMasterKeys(config);
  return config.store.databaseUrl
    ? openPostgresStore({ connectionString: config.store.databaseUrl, auditKey, masterKeys, now })
    : openSqliteStore({ path: path.join(config.dataDir, "parley.db"), auditKey, masterKeys, now });
}
