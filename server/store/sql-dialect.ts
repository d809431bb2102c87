// Everything that differs between the SQL of the SQLite and the Postgres store, in one place:
// column types, table options and placeholders. Shared SQL (schema.ts, queries.ts) is written
// once with these holes; anything a dialect lacks entirely (FOR UPDATE, UNNEST) stays in its backend.

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
}

export const SQLITE: SqlDialect = { name: "sqlite", bytes: "BLOB", int64: "INTEGER", smallRowTable: " WITHOUT ROWID" };

export const POSTGRES: SqlDialect = { name: "postgres", bytes: "BYTEA", int64: "BIGINT", smallRowTable: "" };

/**
 * Shared statements use `?` (SQLite's positional placeholder); Postgres wants `$1, $2, ...`.
 * Safe because no shared statement has a `?` inside a literal.
 */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
