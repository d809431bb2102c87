// Picks the directory backend: Postgres when a database URL is configured (several nodes share
// it, beside the log store), otherwise a SQLite file in the data directory (one node).

import path from "node:path";
import type { DirectoryHandle } from "./directory.ts";
import { openPostgresDirectory } from "./postgres/postgres-directory.ts";
import { openSqliteDirectory } from "./sqlite/sqlite-directory.ts";

/** The embedded directory's file, in the data directory. */
export const DIRECTORY_FILE = "directory.db";

export interface DirectoryOptions {
  /** The data directory (where the SQLite file goes when there is no database URL). */
  dataDir: string;
  /** postgres:// URL (DATABASE_URL); null or absent: SQLite. */
  databaseUrl?: string | null;
  /** Postgres only: schema to work in (tests isolate themselves this way); default: the search_path's. */
  schema?: string;
}

/** Opens (creating and migrating when needed) the directory the options select. */
export function openDirectory(options: DirectoryOptions): Promise<DirectoryHandle> {
  if (options.databaseUrl) return openPostgresDirectory({ connectionString: options.databaseUrl, schema: options.schema });
  return openSqliteDirectory(path.join(options.dataDir, DIRECTORY_FILE));
}
