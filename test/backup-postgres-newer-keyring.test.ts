// An old Postgres data backup restored with a NEWER keyring of the same deployment, with the real
// `parley` command, pg_dump and psql against real Postgres (postgres-keyring-lineage.ts): backup A,
// then a conversation destroyed and another started, then backup B. A's data with B's keyring
// restores everything but the destroyed conversation, which comes back destroyed (no rows, a
// tombstone, reported by the restore) and `parley audit verify --all` passes on the result. A
// keyring of another deployment (even one sharing the master key) and an older keyring are refused,
// and nothing is changed by a refusal.

import { randomBytes } from "node:crypto";
import { access, cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { seedConversation } from "./helpers/seed-conversation.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { requirePostgresTools } from "./helpers/services.ts";
import { signIn, signUp } from "./helpers/sign-up.ts";

const baseUrl = await requirePostgresTools("the Postgres newer-keyring restore");
const enabled = Boolean(baseUrl);

const suffix = randomBytes(5).toString("hex");
const SOURCE_SCHEMA = `parley_nk_${suffix}`;
const OTHER_SCHEMA = `parley_nk_other_${suffix}`;
const TARGET_DATABASE = `parley_nk_target_${suffix}`;
let admin: pg.Client;
let work: string;
let source: TestServer;
let other: TestServer;
let kept: string;
let destroyed: string;
let newMachine: string;

function urlFor(database: string, schema: string): string {
  const url = new URL(baseUrl as string);
  url.pathname = `/${database}`;
  url.searchParams.set("options", `-c search_path=${schema}`);
  return url.toString();
}

async function query<T extends pg.QueryResultRow>(database: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: urlFor(database, "public") });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

const schemaExists = async (schema: string) => (await query(TARGET_DATABASE, "SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])).length > 0;
const pair = (name: string) => ({ file: path.join(work, `${name}.pbk`), keyring: path.join(work, `${name}.keyring.pbk`) });

beforeAll(async () => {
  if (!enabled) return;
  admin = new pg.Client({ connectionString: baseUrl as string });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${SOURCE_SCHEMA}"`);
  await admin.query(`CREATE SCHEMA "${OTHER_SCHEMA}"`);
  await admin.query(`CREATE DATABASE "${TARGET_DATABASE}"`);
  const database = new URL(baseUrl as string).pathname.slice(1);
  work = await mkdtemp(path.join(tmpdir(), "parley-pg-newer-keyring-"));
  newMachine = await mkdtemp(path.join(tmpdir(), "parley-pg-nk-restored-"));
  source = await startTestServer({ env: { DATABASE_URL: urlFor(database, SOURCE_SCHEMA) } });
  const api = apiClient(source.httpUrl);
  const owner = await signUp(api, "owner@newer-keyring.example", "Keyring BV");
  kept = await seedConversation(api, owner.token, "Kept", ["stays", "restored"]);
  destroyed = await seedConversation(api, owner.token, "Destroyed", ["goes", "for good"]);
  const asSource = { DATABASE_URL: urlFor(database, SOURCE_SCHEMA), PARLEY_DATA_DIR: source.dataDir };
  expect((await runParley(["backup", pair("a").file, "--keyring", pair("a").keyring], asSource)).code).toBe(0);
  // After A: one conversation destroyed (its only party deletes it), one started.
  const deleted = await api("DELETE", `/v1/conversations/${destroyed}`, { token: owner.token });
  expect(deleted.status).toBe(200);
  expect(deleted.body.destroyed).toBe(true);
  await seedConversation(api, owner.token, "Started after A", ["new"]);
  expect((await runParley(["backup", pair("b").file, "--keyring", pair("b").keyring], asSource)).code).toBe(0);

  // Another deployment made with the same master key (a copy of the key files, as a staging
  // set-up might): its keyring decrypts, and still must not open this deployment's data.
  const otherDir = await mkdtemp(path.join(tmpdir(), "parley-pg-nk-other-"));
  await cp(path.join(source.dataDir, "keys"), path.join(otherDir, "keys"), { recursive: true });
  other = await startTestServer({ env: { DATABASE_URL: urlFor(database, OTHER_SCHEMA) }, dataDir: otherDir });
  const otherApi = apiClient(other.httpUrl);
  const otherOwner = await signUp(otherApi, "owner@other-deployment.example", "Other BV");
  await seedConversation(otherApi, otherOwner.token, "Elsewhere", ["not yours"]);
  expect((await runParley(["backup", pair("c").file, "--keyring", pair("c").keyring], { DATABASE_URL: urlFor(database, OTHER_SCHEMA), PARLEY_DATA_DIR: otherDir })).code).toBe(0);

  // The machine restored onto: only the key files put back.
  await cp(path.join(source.dataDir, "keys"), path.join(newMachine, "keys"), { recursive: true });
}, 240_000);

afterAll(async () => {
  if (!enabled) return;
  await source?.cleanup();
  await other?.cleanup();
  await admin.query(`DROP SCHEMA IF EXISTS "${SOURCE_SCHEMA}" CASCADE`);
  await admin.query(`DROP SCHEMA IF EXISTS "${OTHER_SCHEMA}" CASCADE`);
  await admin.query(`DROP DATABASE IF EXISTS "${TARGET_DATABASE}" WITH (FORCE)`);
  await admin.end();
  await rm(work, { recursive: true, force: true });
  await rm(newMachine, { recursive: true, force: true });
});

describe.skipIf(!enabled)("Postgres restore of an old data backup with a newer keyring", () => {
  const into = (schema: string) => ({ DATABASE_URL: urlFor(TARGET_DATABASE, schema), PARLEY_DATA_DIR: newMachine });
  const ledgerFile = () => path.join(newMachine, "deletion-ledger.jsonl");

  it("refuses a keyring of another deployment and an older keyring, changing nothing", async () => {
    const foreign = await runParley(["restore", pair("a").file, "--keyring", pair("c").keyring], into("refused"));
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain("is the keyring of another deployment");
    expect(foreign.stderr).toContain("Nothing was changed");

    const older = await runParley(["restore", pair("b").file, "--keyring", pair("a").keyring], into("refused"));
    expect(older.code).toBe(1);
    expect(older.stderr).toContain(`${pair("a").keyring} is older`);
    expect(older.stderr).toContain("Nothing was changed");

    expect(await schemaExists("refused")).toBe(false);
    expect(await schemaExists(SOURCE_SCHEMA)).toBe(false);
    expect(await access(ledgerFile()).then(() => true, () => false)).toBe(false);
  }, 180_000);

  it("restores A's data with B's keyring: everything but the conversation destroyed since, which stays destroyed", async () => {
    await mkdir(newMachine, { recursive: true });
    const restored = await runParley(["restore", pair("a").file, "--keyring", pair("b").keyring], into("restored"));
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain(`1 conversations destroyed since this backup: not restored [${destroyed}]`);
    expect(restored.stdout).toContain(`destroyed again 1 conversation(s) [${destroyed}]`);

    const rows = async (table: string, column: string, id: string) =>
      Number((await query<{ n: string }>(TARGET_DATABASE, `SELECT count(*) AS n FROM restored.${table} WHERE ${column} = $1`, [id]))[0]?.n);
    expect(await rows("entries", "conversation_id", kept)).toBeGreaterThanOrEqual(2);
    expect(await rows("entries", "conversation_id", destroyed)).toBe(0);
    expect(await rows("snapshots", "conversation_id", destroyed)).toBe(0);
    expect(await rows("conversations", "id", destroyed)).toBe(0);
    expect(await rows("destroyed_conversations", "id", destroyed)).toBe(1);

    // Every conversation's and organisation's chain, by the operator's own command.
    const audit = await runParley(["audit", "verify", "--all"], into("restored"));
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);

    // A server on the result serves the kept conversation; the destroyed one is gone.
    const server = await startTestServer({ env: { DATABASE_URL: urlFor(TARGET_DATABASE, "restored") }, dataDir: newMachine });
    try {
      const api = apiClient(server.httpUrl);
      const token = await signIn(api, "owner@newer-keyring.example");
      const read = await api("GET", `/v1/conversations/${kept}/messages`, { token });
      expect(read.status).toBe(200);
      expect((read.body.items as { text: string }[]).map((m) => m.text)).toEqual(["stays", "restored"]);
      expect((await api("GET", `/v1/conversations/${destroyed}/messages`, { token })).status).toBe(404);
    } finally {
      await server.stop();
    }
  }, 240_000);
});
