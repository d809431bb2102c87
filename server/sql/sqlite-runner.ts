// The SqlRunner of the embedded directory: better-sqlite3, synchronous, inside the directory's
// worker thread. Its promises are already settled when returned, so an operation (a chain of
// them) runs to its end before the worker looks at the next message; a transaction is
// BEGIN IMMEDIATE, which also shuts out other processes writing the same file.

import type Database from "better-sqlite3";
import { SQLITE } from "./sql-dialect.ts";
import type { SqlRow, SqlRunner, SqlValue } from "./sql-runner.ts";

/** better-sqlite3 binds neither booleans nor plain Uint8Arrays (as they arrive from the main thread). */
function bind(params: readonly SqlValue[]): unknown[] {
  return params.map((value) => {
    if (typeof value === "boolean") return value ? 1 : 0;
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return value;
  });
}

export class SqliteRunner implements SqlRunner {
  readonly dialect = SQLITE;
  private readonly statements = new Map<string, Database.Statement>();
  private inTransaction = false;

  constructor(private readonly db: Database.Database) {}

  all<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return settled(() => this.prepare(sql).all(...bind(params)) as R[]);
  }

  get<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R | undefined> {
    return settled(() => this.prepare(sql).get(...bind(params)) as R | undefined);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return settled(() => this.prepare(sql).run(...bind(params)).changes);
  }

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    if (this.inTransaction) return work(this);
    this.db.exec("BEGIN IMMEDIATE");
    this.inTransaction = true;
    try {
      const result = await work(this);
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw error;
    } finally {
      this.inTransaction = false;
    }
  }

  isUniqueViolation(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
  }

  /** Each statement is compiled once per connection. */
  private prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

function settled<T>(read: () => T): Promise<T> {
  try {
    return Promise.resolve(read());
  } catch (error) {
    return Promise.reject(error);
  }
}
