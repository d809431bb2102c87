// With Postgres, "acknowledged" means "committed by Postgres": the server warns at start when
// Postgres itself is set to lose commits in a crash (fsync or synchronous_commit off), instead of
// letting acknowledged writes be lost without anyone having been told.

import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestServer } from "./helpers/server.ts";
import { requirePostgres } from "./helpers/services.ts";

let databaseUrl: string | null = null;
const schemas: string[] = [];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl ?? "" });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  databaseUrl = await requirePostgres();
});
afterAll(async () => {
  for (const schema of schemas) await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});

/** The warnings a server on a fresh schema logs at start, its connections opened with `settings`. */
async function startWarnings(settings: string): Promise<string[]> {
  const schema = `parley_durability_${randomUUID().replaceAll("-", "").slice(0, 10)}`;
  schemas.push(schema);
  await admin(`CREATE SCHEMA "${schema}"`);
  const url = new URL(databaseUrl ?? "");
  url.searchParams.set("options", `-c search_path=${schema} ${settings}`.trim());
  const lines: string[] = [];
  const server = await startTestServer({ env: { DATABASE_URL: url.toString() }, logLines: (line) => lines.push(line) });
  await server.cleanup();
  return lines.filter((line) => line.includes("may lose acknowledged writes"));
}

it("warns at start when Postgres runs with synchronous_commit off, naming the setting", async (context) => {
  if (!databaseUrl) return context.skip();
  const [warning] = await startWarnings("-c synchronous_commit=off");
  expect(warning).toBeDefined();
  expect(JSON.parse(warning)).toMatchObject({ level: 40, synchronousCommit: "off" });
});

it("says nothing when commits are durable (fsync and synchronous_commit on)", async (context) => {
  if (!databaseUrl) return context.skip();
  expect(await startWarnings("")).toEqual([]);
});
