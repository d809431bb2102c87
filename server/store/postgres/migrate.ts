// Applies the shared schema (../schema.ts) to Postgres at start. Several nodes starting together
// all run this: a transaction-scoped advisory lock makes them take turns, so the first migrates
// and the others find the schema current (concurrent CREATE ... IF NOT EXISTS can otherwise fail).

import { createHash } from "node:crypto";
import {
  CREATE_SCHEMA_VERSION_TABLE,
  INSERT_SCHEMA_VERSION,
  migrationsFrom,
  SCHEMA_VERSION,
  SELECT_SCHEMA_VERSION,
  UPDATE_SCHEMA_VERSION,
} from "../schema.ts";
import { numberedPlaceholders, POSTGRES } from "../sql-dialect.ts";
import type { StorePool } from "./pool.ts";

/** Brings the schema up to SCHEMA_VERSION (creating `schema` first when given); refuses a newer one. */
export async function migrate(pool: StorePool, schema: string | undefined): Promise<number> {
  return pool.transaction("BEGIN", async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [migrationLockKey(schema)]);
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(CREATE_SCHEMA_VERSION_TABLE);
    const { rows } = await client.query<{ version: number }>(SELECT_SCHEMA_VERSION);
    const from = rows[0]?.version ?? 0;
    for (const script of migrationsFrom(from, POSTGRES)) await client.query(script);
    if (rows.length === 0) await client.query(numberedPlaceholders(INSERT_SCHEMA_VERSION), [SCHEMA_VERSION]);
    else if (from !== SCHEMA_VERSION) await client.query(numberedPlaceholders(UPDATE_SCHEMA_VERSION), [SCHEMA_VERSION]);
    return SCHEMA_VERSION;
  });
}

/** One lock per schema, the same on every node: a 64-bit number derived from the schema's name. */
function migrationLockKey(schema: string | undefined): string {
  return createHash("sha256")
    .update(`parley/migrate/${schema ?? ""}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}
