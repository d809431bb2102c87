// What the shared directory logic (sql-directory.ts) needs from a database: run the shared
// statements (written with `?` placeholders), and group several into one write transaction. One
// implementation per backend (sqlite/sqlite-runner.ts, postgres/pg-runner.ts); everything a
// dialect does differently with values (booleans, placeholders, error codes) stays inside them.

import type { SqlDialect } from "./sql-dialect.ts";

/** A value bound to a placeholder. Booleans are the runner's to encode (SQLite: 1/0). */
export type SqlValue = string | number | boolean | null | Uint8Array;

/** A result row, column name to value, as the driver returns it. */
export type SqlRow = Record<string, unknown>;

export interface SqlRunner {
  /** Fills the holes of shared SQL (column types, row locks). */
  readonly dialect: SqlDialect;
  /** Every row of a query. */
  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
  /** The first row of a query (or of an UPDATE ... RETURNING), or undefined. */
  get<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R | undefined>;
  /** Runs a statement; resolves with how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Runs `work` in one write transaction: all of it or none of it, and rows it locks (or, on
   * SQLite, the whole database) stay locked against other nodes until it ends. Calls inside
   * `work` must go through `tx`; a transaction inside a transaction joins the outer one.
   */
  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** True when `error` is a unique or primary-key violation. */
  isUniqueViolation(error: unknown): boolean;
}
