// The one wiring of the `parley` subcommands: the configuration loaded once (from the environment,
// `--data-dir` overriding PARLEY_DATA_DIR), one logger, and the parts a subcommand asks for
// (directory, audit, log store, keyring table, keys, master keys, partner storage) opened on
// first use, at most once each, and closed when the subcommand ends, also when it fails, newest
// first (the order the commands closed them in by hand). A subcommand states what it needs by
// asking; nothing else opens.

import { existsSync } from "node:fs";
import path from "node:path";
import { type Audit, openAudit } from "../audit/audit-module.ts";
import { type CheckpointKey, loadOrCreateCheckpointKey } from "../audit/checkpoint-key.ts";
import { configuredMasterKeys } from "../backup/backup-keys.ts";
import { loadOrCreateKeys, type ServerKeys } from "../crypto/keys.ts";
import type { MasterKeyring } from "../crypto/master-key.ts";
import { type AuditLogHandle, openAuditLog } from "../directory/audit-log.ts";
import type { Directory } from "../directory/directory.ts";
import { openDirectory } from "../directory/open-directory.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { type Config, ConfigError, loadConfig } from "../platform/config.ts";
import { createLogger, type Logger } from "../platform/logger.ts";
import { KEYRING_FILE } from "../store/keyring.ts";
import { type KeyringTable, postgresKeyringTable, sqliteKeyringTable } from "../store/master-rotation.ts";
import { openPostgresStore } from "../store/postgres/postgres-store.ts";
import { openSqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import { openPartnerStorage, type PartnerStorage } from "../webhooks/partner-storage.ts";

export interface CliContextOptions {
  /** `--data-dir DIR` as given; overrides PARLEY_DATA_DIR. */
  dataDir?: string;
  /** The logger's level; default: the configuration's (PARLEY_LOG_LEVEL). */
  logLevel?: string;
  env?: NodeJS.ProcessEnv;
  /** The wall clock (platform/clock.ts); the system's unless a test passes one. */
  now?: Clock;
}

/** What a subcommand may ask for; each part opens on its first call and is shared after. */
export interface CliContext {
  readonly config: Config;
  readonly logger: Logger;
  /** The subcommand's one wall clock: what it records, grants and stamps takes its time from here. */
  readonly now: Clock;
  keys(): Promise<ServerKeys>;
  checkpointKey(): Promise<CheckpointKey>;
  /**
   * The directory, inside an object: the directory (like the audit log) may be a proxy to a
   * worker that answers any property, `then` included, so a promise must never resolve to it.
   */
  directory(): Promise<{ directory: Directory }>;
  /** The audit log with its recorder (no checkpointing: that is the server's). */
  audit(): Promise<Audit>;
  /** The audit log alone, without the recorder's keys. */
  auditLog(): Promise<{ log: AuditLogHandle["log"] }>;
  /** The conversation log store the configuration selects, under the configured master keys. */
  store(): Promise<Store>;
  /** The table of wrapped data keys (keys rotate-master). */
  keyringTable(): Promise<KeyringTable>;
  /** The configured master keys, current first; refuses (never generates one) when none is configured. */
  masterKeys(): Promise<MasterKeyring>;
  /** The partner events and webhook stores (ledger replay forgets destroyed conversations' copies). */
  partnerStorage(): Promise<PartnerStorage>;
}

/** The configuration for the subcommand's environment and `--data-dir`. */
export function cliConfig(options: Pick<CliContextOptions, "dataDir" | "env">): Config {
  const env = options.env ?? process.env;
  return loadConfig(options.dataDir ? { ...env, PARLEY_DATA_DIR: options.dataDir } : env);
}

/** Runs `command` with a context and closes every part it opened, whether it resolves or throws. */
export async function withCliContext<T>(options: CliContextOptions, command: (context: CliContext) => Promise<T>): Promise<T> {
  const config = cliConfig(options);
  const logger = createLogger(options.logLevel ?? config.logLevel);
  const now = options.now ?? systemClock;
  const closers: (() => Promise<void>)[] = [];
  /** One opening per part; what it opened is closed at the end. */
  const part = <V>(open: () => Promise<{ value: V; close?: () => Promise<void> }>): (() => Promise<V>) => {
    let opened: Promise<V> | undefined;
    return () => {
      opened ??= open().then(({ value, close }) => {
        if (close) closers.push(close);
        return value;
      });
      return opened;
    };
  };
  const keys = part(async () => ({ value: await loadOrCreateKeys(config.keysDir) }));
  const masterKeys = part(async () => ({ value: await configuredMasterKeys(config) }));
  const where = { dataDir: config.dataDir, databaseUrl: config.store.databaseUrl };
  /** The embedded databases are files in the data directory: a directory that is not there is a mistyped path, said as such. */
  const embeddedIn = <V>(open: () => Promise<V>): (() => Promise<V>) => async () => {
    if (!config.store.databaseUrl && !existsSync(config.dataDir)) {
      throw new ConfigError(`no data directory ${config.dataDir}: --data-dir (or PARLEY_DATA_DIR) must name the server's data directory`);
    }
    return open();
  };
  const context: CliContext = {
    config,
    logger,
    now,
    keys,
    checkpointKey: part(async () => ({ value: await loadOrCreateCheckpointKey(config.keysDir) })),
    directory: part(embeddedIn(async () => {
      const handle = await openDirectory(where);
      return { value: { directory: handle.directory }, close: handle.close };
    })),
    audit: part(embeddedIn(async () => {
      const audit = await openAudit(config, { keys: await keys(), logger, now });
      return { value: audit, close: () => audit.close() };
    })),
    auditLog: part(embeddedIn(async () => {
      const handle = await openAuditLog(where);
      return { value: { log: handle.log }, close: handle.close };
    })),
    store: part(embeddedIn(async () => {
      // The master keys first: without them there is nothing to open, and no key file is made.
      const ring = await masterKeys();
      const { auditKey } = await keys();
      const store = config.store.databaseUrl
        ? await openPostgresStore({ connectionString: config.store.databaseUrl, auditKey, masterKeys: ring, now })
        : await openSqliteStore({ path: path.join(config.dataDir, "parley.db"), auditKey, masterKeys: ring, now });
      return { value: store, close: () => store.close() };
    })),
    keyringTable: part(embeddedIn(async () => {
      const file = path.join(config.dataDir, KEYRING_FILE);
      // The server makes keyring.db when it first starts: without it, this is not its data directory.
      if (!config.store.databaseUrl && !existsSync(file)) {
        throw new ConfigError(`no ${KEYRING_FILE} in ${config.dataDir}: --data-dir (or PARLEY_DATA_DIR) must name the data directory of a server that has started once`);
      }
      const table = config.store.databaseUrl ? await postgresKeyringTable(config.store.databaseUrl) : sqliteKeyringTable(file);
      return { value: table, close: () => table.close() };
    })),
    masterKeys,
    partnerStorage: part(embeddedIn(async () => {
      const storage = await openPartnerStorage(where);
      return { value: storage, close: () => storage.close() };
    })),
  };
  let result: T;
  try {
    result = await command(context);
  } catch (error) {
    await closeAll(closers).catch(() => {});
    throw error; // the command's own error, not a close's
  }
  await closeAll(closers);
  return result;
}

/** Closes newest first; a failing close does not keep the older parts open (the first failure is thrown). */
async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  let failure: unknown;
  for (const close of closers.reverse()) {
    await close().catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure !== undefined) throw failure;
}
