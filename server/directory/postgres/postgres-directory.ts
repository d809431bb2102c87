// The directory several nodes share: Postgres through a pool, on the event loop (no worker
// thread). Same SqlDirectory as the embedded one; the schema is migrated at start under the same
// advisory lock as the log store's, so nodes starting together migrate once.

import type pg from "pg";
import { AUDIT_SCHEMA } from "../audit-schema.ts";
import { migrate } from "../../sql/pg-migrate.ts";
import { toStoreError } from "../../sql/pg-errors.ts";
import { SCHEMA_NAME, StorePool } from "../../sql/pg-pool.ts";
import { DirectoryError, type DirectoryHandle, forwardDirectory } from "../directory.ts";
import { DIRECTORY_SCHEMA } from "../directory-schema.ts";
import { SqlDirectory } from "../sql-directory.ts";
import { PgRunner } from "../../sql/pg-runner.ts";
import type { WorkerThread } from "../../sql/worker-service.ts";

export interface PostgresDirectoryOptions {
  /** The same URL (and TLS rules) as the log store's; see PostgresStoreOptions.connectionString. */
  connectionString: string;
  /** Schema holding the tables (created if missing); a plain lowercase identifier. Default: the search_path's. */
  schema?: string;
  /** Connections per node. Default 5 (directory calls are short). */
  poolSize?: number;
  /** TLS settings passed to node-postgres; see PostgresStoreOptions.ssl. */
  ssl?: pg.PoolConfig["ssl"];
  /** How long getting a connection may take before a call fails as `unavailable`. Default 5000. */
  connectTimeoutMs?: number;
  /** How long one statement may go unanswered before its call fails as `unavailable`. Default 30000. */
  queryTimeoutMs?: number;
}

/** Connects, migrates (safe when several nodes start together) and resolves with an open directory. */
export async function openPostgresDirectory(options: PostgresDirectoryOptions): Promise<DirectoryHandle> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new DirectoryError("invalid", "schema must be a lowercase identifier (a-z, 0-9, _)");
  }
  const pool = new StorePool({
    connectionString: options.connectionString,
    ssl: options.ssl,
    schema: options.schema,
    poolSize: options.poolSize ?? 5,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
  });
  try {
    await migrate(pool, options.schema, DIRECTORY_SCHEMA);
    // The org audit tables too: audited changes append to them in the directory's own transaction.
    await migrate(pool, options.schema, AUDIT_SCHEMA);
  } catch (error) {
    await pool.end().catch(() => {});
    throw fromPostgres(error, "cannot open the Postgres directory");
  }
  return new PostgresDirectoryHandle(pool);
}

/** Counts calls in flight so close() can let them finish; refuses new ones once closing. */
class PostgresDirectoryHandle implements DirectoryHandle {
  readonly directory;
  private status: "open" | "closing" | "closed" = "open";
  private active = 0;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly pool: StorePool) {
    const sql = new SqlDirectory(new PgRunner(pool)) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    this.directory = forwardDirectory(async (op, args) => {
      if (this.status !== "open") throw new DirectoryError("unavailable", "the directory is closed");
      this.active++;
      try {
        return await sql[op](...args);
      } catch (error) {
        throw fromPostgres(error, op);
      } finally {
        if (--this.active === 0) this.drained?.();
      }
    });
  }

  // Arrow properties, not methods: callers destructure the handle (`const { close } = …`), as
  // they may with the SQLite handle, a plain object.
  readonly alive = (): boolean => this.status === "open";
  /** A pool, no thread: a lost connection recovers by itself (readiness reports it meanwhile). */
  readonly workers: readonly WorkerThread[] = [];

  readonly close = (): Promise<void> => {
    this.closing ??= (async () => {
      this.status = "closing";
      if (this.active > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.status = "closed";
      await this.pool.end();
    })();
    return this.closing;
  };
}

/** Postgres unreachable, restarting, out of connections: `unavailable` (nothing was changed). Others pass through. */
function fromPostgres(error: unknown, doing: string): unknown {
  if (error instanceof DirectoryError) return error;
  const mapped = toStoreError(error, doing);
  if (mapped.code === "unavailable" || mapped.code === "busy") return new DirectoryError("unavailable", `the directory is unavailable (${mapped.message})`);
  return error;
}
