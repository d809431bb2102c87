// Which files of the data directory a backup holds: an explicit list of the embedded SQLite
// databases, so nothing lands in a backup by accident. The keyring of wrapped data keys and the
// key files are deliberately NOT here: destroying a data key must make every old backup of that
// conversation unreadable (crypto-shredding), and a backup must be useless without the master key.

import Database from "better-sqlite3";
import { DIRECTORY_SCHEMA } from "../directory/directory-schema.ts";
import { STORE_SCHEMA } from "../store/schema.ts";
import { currentVersion, type VersionedSchema } from "../sql/versioned-schema.ts";

/** One embedded database a backup holds. */
export interface EmbeddedDatabase {
  /** File name in the data directory. */
  name: string;
  /** The schema recording its own version, if it has one (events.db and webhooks.db do not yet). */
  schema: VersionedSchema | null;
}

/** Every embedded database, in the order a backup copies and a restore checks them. */
export const EMBEDDED_DATABASES: readonly EmbeddedDatabase[] = [
  { name: "parley.db", schema: STORE_SCHEMA },
  { name: "directory.db", schema: DIRECTORY_SCHEMA },
  { name: "events.db", schema: null },
  { name: "webhooks.db", schema: null },
];

/** The embedded database named `name` (a manifest's names are checked against the list first). */
export function embeddedDatabase(name: string): EmbeddedDatabase {
  const database = EMBEDDED_DATABASES.find((d) => d.name === name);
  if (!database) throw new Error(`${name} is not an embedded database`);
  return database;
}

/** What a backup never holds; printed by `parley backup` and written into every manifest. */
export const NOT_BACKED_UP =
  "the keyring of data keys (keyring.db) and the key files (master key, signing, audit and secrets keys): keep them apart from data backups";

/** SQLite's companion files of a database, which travel with it when it is moved aside. */
export function companionFiles(name: string): string[] {
  return [name, `${name}-wal`, `${name}-shm`, `${name}-journal`];
}

/** The schema version recorded in a database file (its version table, else PRAGMA user_version). */
export function readSchemaVersion(file: string, database: EmbeddedDatabase): number {
  const db = new Database(file, { fileMustExist: true });
  try {
    const table = database.schema?.versionTable;
    if (table && db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table)) {
      const row = db.prepare(`SELECT version FROM ${table}`).get() as { version: number } | undefined;
      return row?.version ?? 0;
    }
    return db.pragma("user_version", { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** The newest schema version of a database this code can open (null: not versioned, anything goes). */
export function supportedSchemaVersion(database: EmbeddedDatabase): number | null {
  return database.schema ? currentVersion(database.schema) : null;
}
