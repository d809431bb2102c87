// Postgres's own tools, as the Postgres backup runs them: pg_dump inside one exported snapshot
// (so the data dump, the keyring dump and the row counts are one moment), and psql applying dumps
// in a single transaction. The connection travels in libpq's environment variables, never on the
// command line (where `ps` would show the password).

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { BackupError } from "./backup-file.ts";

const run = promisify(execFile);
/** A dump or restore of a large database takes long; a hung tool must still end. */
const TOOL_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/** Double-quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** libpq's environment for DATABASE_URL (host, port, user, password, database, options, sslmode). */
export function libpqEnv(databaseUrl: string): NodeJS.ProcessEnv {
  const url = new URL(databaseUrl);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("PG")) delete env[name];
  if (url.hostname) env.PGHOST = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, ""));
  if (url.port) env.PGPORT = url.port;
  if (url.username) env.PGUSER = decodeURIComponent(url.username);
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (database) env.PGDATABASE = database;
  const options = url.searchParams.get("options");
  if (options) env.PGOPTIONS = options;
  const sslmode = url.searchParams.get("sslmode");
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

/** Runs one of Postgres's tools; its stderr becomes the error's message. */
export async function runTool(tool: "pg_dump" | "psql", args: string[], databaseUrl: string): Promise<string> {
  try {
    const { stdout } = await run(tool, args, { env: libpqEnv(databaseUrl), timeout: TOOL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stderr?: string };
    if (failed.code === "ENOENT") throw new BackupError(`${tool} is not installed (Debian: apt-get install postgresql-client)`);
    throw new BackupError(`${tool} failed: ${(failed.stderr || failed.message).trim().split("\n").slice(0, 5).join(" / ")}`);
  }
}

/** The schema DATABASE_URL's search_path puts Parley's tables in (the first entry that is not "$user"). */
export async function targetSchema(client: pg.Client): Promise<string> {
  const path = (await client.query<{ path: string }>("SELECT current_setting('search_path') AS path")).rows[0]?.path ?? "";
  const first = path
    .split(",")
    .map((entry) => entry.trim())
    .find((entry) => entry !== "" && entry !== '"$user"' && entry !== "$user");
  if (!first) throw new BackupError(`search_path "${path}" names no schema for Parley's tables`);
  return first.startsWith('"') ? first.slice(1, -1).replaceAll('""', '"') : first;
}

/** Connects with DATABASE_URL, or fails as a backup error naming the problem. */
export async function connect(databaseUrl: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new BackupError(`cannot connect to DATABASE_URL: ${(error as Error).message}`);
  }
  return client;
}

/** The tables of `schema`, by name. */
export async function tablesOf(client: pg.Client, schema: string): Promise<string[]> {
  const rows = await client.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [schema]);
  return rows.rows.map((row) => row.name);
}

/** How many relations (tables, sequences, views…) `schema` holds, or null when it does not exist. */
export async function relationsIn(client: pg.Client, schema: string): Promise<number | null> {
  const found = await client.query<{ n: number | null }>(
    "SELECT (SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = n.oid) AS n FROM pg_namespace n WHERE n.nspname = $1",
    [schema],
  );
  return found.rows[0]?.n ?? null;
}

/** Row counts of every table of `schema`, as this transaction sees them. */
export async function rowCounts(client: pg.Client, schema: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of await tablesOf(client, schema)) {
    const result = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${quoteIdent(schema)}.${quoteIdent(table)}`);
    counts[table] = Number(result.rows[0]?.n ?? 0);
  }
  return counts;
}

/**
 * Runs `during` inside a read-only repeatable-read transaction whose snapshot is exported: pg_dump
 * given the snapshot id sees exactly what the transaction sees.
 */
export async function inExportedSnapshot<T>(client: pg.Client, during: (snapshot: string) => Promise<T>): Promise<T> {
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  try {
    const snapshot = (await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id")).rows[0]?.id as string;
    const result = await during(snapshot);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
