// Everything that differs between the SQL of the SQLite and the Postgres backends (the log store
// and the directory), in one place: column types, table options, row locks and placeholders.
// Shared SQL is written once with these holes; what a dialect lacks entirely (UNNEST) stays in
// its backend. Upserts need no hole: both speak INSERT ... ON CONFLICT, so shared SQL uses only that.

export interface SqlDialect {
  name: "sqlite" | "postgres";
  /** Column type for byte strings. */
  bytes: string;
  /** Column type for integers past 32 bits: sequence numbers and millisecond timestamps. */
  int64: string;
  /**
   * Table option for small rows updated in place on every commit. SQLite: WITHOUT ROWID, one
   * B-tree instead of two. Postgres has no clustered tables; its heap plus primary key is fine.
   */
  smallRowTable: string;
  /**
   * Column type for true/false. SQLite has none: 0/1 in an INTEGER (it reads TRUE and FALSE as
   * 1 and 0, so shared SQL may write those literals). Bound values are the backend's business.
   */
  boolean: string;
  /**
   * Suffix of a SELECT that locks the rows it reads until the transaction ends. SQLite needs none:
   * a write transaction (BEGIN IMMEDIATE) already shuts out every other writer.
   */
  lockRows: string;
}

export const SQLITE: SqlDialect = {
  name: "sqlite",
  bytes: "BLOB",
  int64: "INTEGER",
  smallRowTable: " WITHOUT ROWID",
  boolean: "INTEGER",
  lockRows: "",
};

export const POSTGRES: SqlDialect = {
  name: "postgres",
  bytes: "BYTEA",
  int64: "BIGINT",
  smallRowTable: "",
  boolean: "BOOLEAN",
  lockRows: " FOR UPDATE",
};

/**
 * Shared statements use `?` (SQLite's positional placeholder); Postgres wants `$1, $2, ...`.
 * Safe because no shared statement has a `?` inside a literal.
 */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
