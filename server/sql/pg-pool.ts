// The node-postgres pool the Postgres store runs on: its settings (timeouts, keep-alive, TLS),
// how 64-bit integers come back (as numbers), each connection's session setup (search_path), and
// transactions on one connection that retry after a deadlock and never reuse a broken link.

import pg from "pg";
import { isConnectionFailure, isTransientConflict } from "./pg-errors.ts";

export interface PoolSettings {
  connectionString: string;
  /** Passed to pg as-is; see openPostgresStore's `ssl` option. */
  ssl?: pg.PoolConfig["ssl"];
  /** Schema to work in (already validated as a plain lowercase identifier), or undefined for the default search_path. */
  schema?: string;
  poolSize: number;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

/** What a `schema` option may be: a plain lowercase identifier, safe to quote into SQL. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const INT8_OID = 20;

// Sequence numbers and millisecond times are BIGINT; pg returns those as strings by default.
// Both stay far below 2^53, so numbers are exact. Per pool, so pg's global parsers stay untouched.
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * A session that another node is waiting on (it holds head row locks) must not sit idle in a
 * transaction forever if its node stalls or is cut off: Postgres ends it after this long.
 */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;

/**
 * The store's view of a pg.Pool: every connection it hands out has had its session set up
 * (search_path, timeouts) before the first statement, and transactions retry on deadlock.
 */
export class StorePool {
  private readonly pool: pg.Pool;
  private readonly setup: string;
  private readonly ready = new WeakSet<pg.PoolClient>();

  constructor(s: PoolSettings) {
    this.pool = new pg.Pool({
      connectionString: s.connectionString,
      ssl: s.ssl,
      max: s.poolSize,
      connectionTimeoutMillis: s.connectTimeoutMs,
      // Client-side: a server that stops answering (not closing) fails the call instead of hanging it.
      query_timeout: s.queryTimeoutMs,
      keepAlive: true,
      idleTimeoutMillis: 30_000,
      application_name: "parley",
      types: TYPES,
    });
    // An idle connection that breaks (server restart, network cut) is reported here; the pool has
    // already dropped it and the next call connects afresh. Without a listener it would crash the process.
    this.pool.on("error", () => {});
    // The same for a connection in use: its failure already fails the statement running on it,
    // and pg would otherwise also raise it as an uncaught 'error' event.
    this.pool.on("connect", (client) => client.on("error", () => {}));
    this.setup = sessionSetup(s.schema);
  }

  /** A connection whose session is set up; give it back with `release` (with the error, if it broke). */
  async connect(): Promise<pg.PoolClient> {
    const client = await this.pool.connect();
    if (this.ready.has(client)) return client;
    try {
      await client.query(this.setup);
    } catch (err) {
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    this.ready.add(client);
    return client;
  }

  /** One statement on its own (autocommit). */
  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await client.query<R>(config);
    } catch (err) {
      if (isConnectionFailure(err)) broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Runs `work` between `begin` and COMMIT on one connection. A deadlock or serialization failure
   * rolled everything back, so the whole transaction runs again (re-reading what it read). A
   * connection that failed is destroyed, never returned to the pool.
   */
  async transaction<T>(begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      let broken: Error | undefined;
      try {
        await client.query(begin);
        const result = await work(client);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        broken = await rollback(client, err);
        if (!broken && attempt < MAX_ATTEMPTS && isTransientConflict(err)) continue;
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  /** Closes every connection once the ones in use are given back. */
  end(): Promise<void> {
    return this.pool.end();
  }
}

function sessionSetup(schema: string | undefined): string {
  const statements = [`SET idle_in_transaction_session_timeout = ${IDLE_IN_TRANSACTION_TIMEOUT_MS}`];
  if (schema) statements.push(`SET search_path TO "${schema}"`);
  return statements.join("; ");
}

/** How many times a transaction that lost a deadlock or serialization race is run again. */
const MAX_ATTEMPTS = 3;

/** Rolls back after a failure; returns an error when the connection must be discarded. */
async function rollback(client: pg.PoolClient, cause: unknown): Promise<Error | undefined> {
  if (isConnectionFailure(cause)) return cause instanceof Error ? cause : new Error(String(cause));
  try {
    await client.query("ROLLBACK");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
