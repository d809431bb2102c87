// A schema that records its own version in a one-row table and migrates itself forward: the log
// store's and the directory's. Written once for both dialects; each backend's migrate() runs the
// pending scripts under its own lock (SQLite: BEGIN IMMEDIATE; Postgres: an advisory lock).

import type { SqlDialect } from "./sql-dialect.ts";

export interface VersionedSchema {
  /** What the schema holds, for error messages ("store", "directory"). */
  name: string;
  /** The one-row table recording the applied version; distinct per schema, so two can share a database. */
  versionTable: string;
  /** Each migration runs once, in order, in the same transaction as its version bump. Append only. */
  migrations: readonly ((d: SqlDialect) => string)[];
}

/** The version this code writes. */
export function currentVersion(schema: VersionedSchema): number {
  return schema.migrations.length;
}

/** The statements on a schema's version table. INSERT and UPDATE take the version as `?`. */
export function versionStatements(schema: VersionedSchema): { create: string; select: string; insert: string; update: string } {
  const table = schema.versionTable;
  return {
    create: `CREATE TABLE IF NOT EXISTS ${table} (version INTEGER NOT NULL)`,
    select: `SELECT version FROM ${table}`,
    insert: `INSERT INTO ${table} (version) VALUES (?)`,
    update: `UPDATE ${table} SET version = ?`,
  };
}

/**
 * The scripts that bring a database from version `from` to the current one (empty when current).
 * Refuses a database written by a newer Parley rather than guess at its layout.
 */
export function pendingMigrations(schema: VersionedSchema, from: number, dialect: SqlDialect): string[] {
  const version = currentVersion(schema);
  if (from > version) {
    const what = schema.name === "store" ? "database schema" : `${schema.name} schema`;
    throw new Error(`${what} version ${from} is newer than this server's ${version}`);
  }
  return schema.migrations.slice(from).map((migration) => migration(dialect));
}
