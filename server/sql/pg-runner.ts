// The SqlRunner of the shared directory: node-postgres through the store's pool (session setup,
// deadlock retries, broken links never reused). Shared statements get numbered placeholders and
// run as named prepared statements, parsed once per connection.

import { createHash } from "node:crypto";
import type pg from "pg";
import type { StorePool } from "./pg-pool.ts";
import { numberedPlaceholders, POSTGRES } from "./sql-dialect.ts";
import type { SqlRow, SqlRunner, SqlValue } from "./sql-runner.ts";

interface Prepared {
  name: string;
  text: string;
}

/** Shared by every runner of the process: the SQL is the same, only connections differ. */
const prepared = new Map<string, Prepared>();

function prepare(sql: string): Prepared {
  let statement = prepared.get(sql);
  if (!statement) {
    const text = numberedPlaceholders(sql);
    statement = { name: `parley_dir_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, text };
    prepared.set(sql, statement);
  }
  return statement;
}

export class PgRunner implements SqlRunner {
  readonly dialect = POSTGRES;

  /** With `client`, every call runs on it (inside its transaction); without, on any pooled connection. */
  constructor(
    private readonly pool: StorePool,
    private readonly client?: pg.PoolClient,
  ) {}

  async all<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  async get<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R | undefined> {
    return (await this.query<R>(sql, params)).rows[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    if (this.client) return work(this);
    // READ COMMITTED: every statement sees what committed before it, and a conditional UPDATE
    // that waited for another node's lock re-checks its condition on the row that node left.
    return this.pool.transaction("BEGIN", (client) => work(new PgRunner(this.pool, client)));
  }

  isUniqueViolation(error: unknown): boolean {
    return (error as { code?: unknown } | null)?.code === "23505";
  }

  private query<R extends SqlRow>(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult<R>> {
    const { name, text } = prepare(sql);
    const config: pg.QueryConfig = { name, text, values: params as unknown[] };
    return this.client ? this.client.query<R>(config) : this.pool.query<R>(config);
  }
}
