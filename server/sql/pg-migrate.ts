// Applies a versioned schema (the store's, the directory's, the audit log's, ...) to Postgres at start.
// Several nodes starting together all run this: a transaction-scoped advisory lock makes them take
// turns, so the first migrates and the others find the schema current (concurrent
// CREATE ... IF NOT EXISTS can otherwise fail).

import { createHash } from "node:crypto";
import { numberedPlaceholders, POSTGRES } from "./sql-dialect.ts";
import { currentVersion, pendingMigrations, type VersionedSchema, versionStatements } from "./versioned-schema.ts";
import type { StorePool } from "./pg-pool.ts";

/**
 * Brings `target` up to its current version, creating the Postgres
 * `schema` first when given; refuses a newer one. Returns the version.
 */
export async function migrate(pool: StorePool, schema: string | undefined, target: VersionedSchema): Promise<number> {
  const version = currentVersion(target);
  const statements = versionStatements(target);
  return pool.transaction("BEGIN", async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [migrationLockKey(schema)]);
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(statements.create);
    const { rows } = await client.query<{ version: number }>(statements.select);
    const from = rows[0]?.version ?? 0;
    for (const script of pendingMigrations(target, from, POSTGRES)) await client.query(script);
    if (rows.length === 0) await client.query(numberedPlaceholders(statements.insert), [version]);
    else if (from !== version) await client.query(numberedPlaceholders(statements.update), [version]);
    return version;
  });
}

/**
 * One lock per Postgres schema, the same on every node: a 64-bit number derived from the schema's
 * name. Every versioned schema in it takes the same lock, so their migrations never overlap.
 */
function migrationLockKey(schema: string | undefined): string {
  return createHash("sha256")
    .update(`parley/migrate/${schema ?? ""}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}
