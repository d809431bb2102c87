// A Postgres deployment's backup and restore drill, with the real `parley` command, pg_dump and
// psql against real Postgres: `parley backup FILE --keyring KFILE` while the server runs, `backup
// verify` of both files, refusals that change nothing (no keyring, a tampered file, an older
// backup's keyring, a target that is not empty), then a restore into a FRESH database under
// another schema name on a "new machine" (only the key files put back), and a server started on it
// serves the same conversations, signs the same people in and its audit chains verify.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupMasterKeys } from "../server/backup/backup-keys.ts";
import { readPostgresBackup, sealPostgresBackup } from "../server/backup/postgres-backup.ts";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { requirePostgresTools } from "./helpers/services.ts";
import { confirmedSignUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

const run = promisify(execFile);
const baseUrl = await requirePostgresTools("the Postgres backup drill");
const enabled = Boolean(baseUrl);

const suffix = randomBytes(5).toString("hex");
const SOURCE_SCHEMA = `parley_pgbk_${suffix}`;
const DRILL_DATABASE = `parley_drill_${suffix}`;
/** A second fresh database, restored into its default schema (public, which a new database has, empty). */
const PUBLIC_DATABASE = `parley_drill_public_${suffix}`;
const RESTORED_SCHEMA = "parley_restored";
let admin: pg.Client;
let work: string;
let server: TestServer;
let sourceUrl: string;
let drillUrl: string;
let newMachine: string;
const EMAILS = ["hilde@helpdesk.example", "sven@supplier.example"];
let original: { conversations: string[]; messages: Record<string, unknown[]>; orgs: string[] };

/** DATABASE_URL for `database` with Parley's tables in `schema`. */
function urlFor(database: string, schema: string): string {
  const url = new URL(baseUrl as string);
  url.pathname = `/${database}`;
  url.searchParams.set("options", `-c search_path=${schema}`);
  return url.toString();
}

async function signIn(api: ReturnType<typeof apiClient>, email: string): Promise<{ token: string; org: string }> {
  const response = await api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD } });
  expect(response.status).toBe(200);
  return { token: response.body.accessToken as string, org: (response.body.organisation as { id: string }).id };
}

/** What a deployment serves: every conversation's messages as each side reads them, and whether each organisation's audit chain verifies. */
async function served(api: ReturnType<typeof apiClient>, conversations: string[]) {
  const messages: Record<string, unknown[]> = {};
  const verified: Record<string, unknown> = {};
  for (const email of EMAILS) {
    const me = await signIn(api, email);
    for (const id of conversations) {
      const read = await api("GET", `/v1/conversations/${id}/messages`, { token: me.token });
      expect(read.status).toBe(200);
      messages[`${email} ${id}`] = (read.body.items as { text: string; org: string }[]).map((m) => ({ text: m.text, org: m.org }));
    }
    verified[me.org] = (await api("GET", `/v1/organisations/${me.org}/audit/verify`, { token: me.token })).body.ok;
  }
  return { messages, verified };
}

async function tableCount(database: string, schema: string, table: string): Promise<number | null> {
  const client = new pg.Client({ connectionString: urlFor(database, "public") });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    if (exists.rowCount === 0) return null;
    return (await client.query(`SELECT count(*)::int AS n FROM "${schema}"."${table}"`)).rows[0].n as number;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (!enabled) return;
  admin = new pg.Client({ connectionString: baseUrl as string });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${SOURCE_SCHEMA}"`);
  await admin.query(`CREATE DATABASE "${DRILL_DATABASE}"`);
  await admin.query(`CREATE DATABASE "${PUBLIC_DATABASE}"`);
  const database = new URL(baseUrl as string).pathname.slice(1);
  sourceUrl = urlFor(database, SOURCE_SCHEMA);
  drillUrl = urlFor(DRILL_DATABASE, RESTORED_SCHEMA);
  work = await mkdtemp(path.join(tmpdir(), "parley-pg-backup-"));
  newMachine = await mkdtemp(path.join(tmpdir(), "parley-pg-restored-"));
  server = await startTestServer({ env: { DATABASE_URL: sourceUrl } });

  // Two organisations share two conversations, each with messages from both sides.
  const api = apiClient(server.httpUrl);
  const [helpdesk, supplier] = await Promise.all(
    EMAILS.map(async (email, i) => {
      const signedUp = await confirmedSignUp(api, { email, password: TEST_PASSWORD, organisation: ["Helpdesk", "Supplier"][i] });
      return { token: signedUp.body.accessToken as string, org: (signedUp.body.organisation as { id: string }).id };
    }),
  );
  const conversations: string[] = [];
  for (const title of ["Broken pump", "Invoice 42"]) {
    const started = await api("POST", "/v1/conversations", { token: helpdesk?.token, body: { title, participants: [{ organisation: supplier?.org }] } });
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    conversations.push(id);
    for (const [who, text] of [
      [helpdesk, `${title}: what happened?`],
      [supplier, `${title}: on it — ünïcødé and 'quotes' survive`],
      [helpdesk, `${title}: thanks`],
    ] as const) {
      expect((await api("POST", `/v1/conversations/${id}/messages`, { token: who?.token, body: { text } })).status).toBe(201);
    }
  }
  const now = await served(api, conversations);
  expect(Object.values(now.verified)).toEqual([true, true]);
  original = { conversations, messages: now.messages, orgs: [helpdesk?.org as string, supplier?.org as string] };
}, 180_000);

afterAll(async () => {
  if (!enabled) return;
  await server?.cleanup();
  await admin.query(`DROP SCHEMA IF EXISTS "${SOURCE_SCHEMA}" CASCADE`);
  await admin.query(`DROP DATABASE IF EXISTS "${DRILL_DATABASE}" WITH (FORCE)`);
  await admin.query(`DROP DATABASE IF EXISTS "${PUBLIC_DATABASE}" WITH (FORCE)`);
  await admin.end();
  await rm(work, { recursive: true, force: true });
  await rm(newMachine, { recursive: true, force: true });
});

describe.skipIf(!enabled)("Postgres backup and restore drill", () => {
  const file = () => path.join(work, "parley.pbk");
  const keyring = () => path.join(work, "keys-apart", "parley.keyring.pbk");
  const asSource = () => ({ DATABASE_URL: sourceUrl, PARLEY_DATA_DIR: server.dataDir });
  const asNewMachine = () => ({ DATABASE_URL: drillUrl, PARLEY_DATA_DIR: newMachine });

  it("backs up a running deployment: pg_dump of the schema and, in a file of its own, the data keys, one snapshot, both encrypted", async () => {
    const withoutKeyring = await runParley(["backup", file()], asSource());
    expect(withoutKeyring.code).not.toBe(0);
    expect(withoutKeyring.stderr).toContain("add --keyring KEYRING_FILE");

    await run("mkdir", ["-p", path.dirname(keyring())]);
    const backup = await runParley(["backup", file(), "--keyring", keyring()], asSource());
    expect(backup.stderr).toContain("NOT INCLUDED: the key files");
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(new RegExp(`Postgres backup [0-9a-f-]{36} of schema ${SOURCE_SCHEMA}`));
    expect(backup.stdout).toMatch(/data_keys {2}2 rows/);
    // Sealed: neither file shows a message, an address or the dump's SQL.
    for (const sealed of [file(), keyring()]) {
      const bytes = await readFile(sealed);
      for (const plain of ["what happened", "hilde@helpdesk.example", "CREATE TABLE", "COPY "]) expect(bytes.includes(plain)).toBe(false);
    }
    for (const sealed of [file(), keyring()]) {
      const verified = await runParley(["backup", "verify", sealed], asSource());
      expect(verified.stderr).toBe("");
      expect(verified.code).toBe(0);
      expect(verified.stdout).toContain(`OK: ${sealed} is intact`);
    }
  }, 180_000);

  it("refuses a tampered file, an older backup's keyring and a non-empty target, and changes nothing", async () => {
    // A new machine: the key files put back (they are never in a backup), nothing else.
    await cp(path.join(server.dataDir, "keys"), path.join(newMachine, "keys"), { recursive: true });

    const tampered = path.join(work, "tampered.pbk");
    const bytes = await readFile(file());
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await writeFile(tampered, bytes);
    const refusedTampered = await runParley(["restore", tampered, "--keyring", keyring()], asNewMachine());
    expect(refusedTampered.code).toBe(1);
    expect(refusedTampered.stderr).toMatch(/failed authentication|checksum/);

    const other = path.join(work, "other.pbk");
    const otherKeyring = path.join(work, "other.keyring.pbk");
    expect((await runParley(["backup", other, "--keyring", otherKeyring], asSource())).code).toBe(0);
    // A later backup's data with this earlier keyring: it lacks the keys of anything started in between.
    const mismatched = await runParley(["restore", other, "--keyring", keyring()], asNewMachine());
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toContain("is older");
    const swapped = await runParley(["restore", keyring(), "--keyring", file()], asNewMachine());
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toContain("is a keyring file, not a data backup");
    expect(await tableCount(DRILL_DATABASE, RESTORED_SCHEMA, "entries")).toBeNull();

    // A dump that restores fewer rows than its manifest counted (sealed with the right key, so
    // only the in-transaction count check can catch it) is rolled back whole.
    const keys = await backupMasterKeys(server.server.config);
    const dump = path.join(work, "extracted.sql");
    const manifest = await readPostgresBackup(file(), keys, dump);
    const forged = path.join(work, "forged.pbk");
    const entries = manifest.rowCounts.entries as number;
    await sealPostgresBackup(forged, keys[0] as Uint8Array, { ...manifest, rowCounts: { ...manifest.rowCounts, entries: entries + 1 } }, dump);
    const miscounted = await runParley(["restore", forged, "--keyring", keyring()], asNewMachine());
    expect(miscounted.code).toBe(1);
    expect(miscounted.stderr).toContain(`restored table entries holds ${entries} rows, the backup ${entries + 1}`);
    expect(await tableCount(DRILL_DATABASE, RESTORED_SCHEMA, "entries")).toBeNull();
    expect(await tableCount(DRILL_DATABASE, manifest.schema, "entries")).toBeNull();

    // The running source itself is not an empty target.
    const notEmpty = await runParley(["restore", file(), "--keyring", keyring()], { DATABASE_URL: sourceUrl, PARLEY_DATA_DIR: newMachine });
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toContain(`schema ${SOURCE_SCHEMA} is not empty`);
  }, 180_000);

  it("restores into a fresh database under another schema name, in one transaction with every row count checked", async () => {
    const restored = await runParley(["restore", file(), "--keyring", keyring()], asNewMachine());
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain(`into schema ${RESTORED_SCHEMA} (every table's row count checked)`);
    expect(restored.stdout).toContain("deletion ledger replayed");
    expect(await tableCount(DRILL_DATABASE, SOURCE_SCHEMA, "entries")).toBeNull();
    expect(await tableCount(DRILL_DATABASE, RESTORED_SCHEMA, "data_keys")).toBe(2);
    expect(await tableCount(DRILL_DATABASE, RESTORED_SCHEMA, "entries")).toBe(await tableCount(new URL(sourceUrl).pathname.slice(1), SOURCE_SCHEMA, "entries"));

    // Into a new database's own (empty) public schema, with no search_path in DATABASE_URL.
    const plainUrl = new URL(baseUrl as string);
    plainUrl.pathname = `/${PUBLIC_DATABASE}`;
    const intoPublic = await runParley(["restore", file(), "--keyring", keyring()], { DATABASE_URL: plainUrl.toString(), PARLEY_DATA_DIR: newMachine });
    expect(intoPublic.stderr).toBe("");
    expect(intoPublic.stdout).toContain("into schema public (every table's row count checked)");
    expect(await tableCount(PUBLIC_DATABASE, "public", "entries")).toBe(await tableCount(DRILL_DATABASE, RESTORED_SCHEMA, "entries"));

    // A second restore over it is refused: it is not empty any more.
    const again = await runParley(["restore", file(), "--keyring", keyring()], asNewMachine());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`schema ${RESTORED_SCHEMA} is not empty`);
  }, 180_000);

  it("drill: a server on the restored database serves the same conversations and people, and its audit chains verify", async () => {
    const drill = await startTestServer({ env: { DATABASE_URL: drillUrl }, dataDir: newMachine });
    try {
      const api = apiClient(drill.httpUrl);
      const now = await served(api, original.conversations);
      expect(now.messages).toEqual(original.messages);
      expect(now.verified).toEqual(Object.fromEntries(original.orgs.map((org) => [org, true])));
      // The restored deployment goes on: a new message lands after the restored ones.
      const helpdesk = await signIn(api, EMAILS[0] as string);
      const id = original.conversations[0] as string;
      expect((await api("POST", `/v1/conversations/${id}/messages`, { token: helpdesk.token, body: { text: "after the restore" } })).status).toBe(201);
      const read = await api("GET", `/v1/conversations/${id}/messages`, { token: helpdesk.token });
      expect((read.body.items as { text: string }[]).map((m) => m.text).at(-1)).toBe("after the restore");
    } finally {
      await drill.stop();
    }
    // Every conversation's and organisation's chain, checked by the operator's own command.
    const audit = await runParley(["audit", "verify", "--all"], asNewMachine());
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  }, 180_000);
});
