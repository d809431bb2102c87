// Master key rotation through the real CLI (`parley keys rotate-master`, a separate process) while
// a store keeps running on the same files: every data key is re-wrapped (no data rewritten), the
// old key file is retired, and everything written before, during and after reads back with the
// new key alone. The old key alone is then refused, naming the key that is needed.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, beforeEach, expect, it } from "vitest";
import * as Y from "yjs";
import { loadMasterKeys, type MasterKeyring, readKeyring, readRetiredKeys } from "../server/crypto/master-key.ts";
import { postgresKeyringTable, rotateMasterKey } from "../server/store/master-rotation.ts";
import { openPostgresStore } from "../server/store/postgres/postgres-store.ts";
import { openSqliteStore, type SqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { Store } from "../server/store/store.ts";
import { requirePostgres } from "./helpers/services.ts";
import { alice, appendsOf, CONTRACT_AUDIT_KEY, loadText, textUpdates } from "./store-contract.ts";

const BIN = path.join(import.meta.dirname, "../bin/parley.js");

let dataDir: string;
let keysDir: string;
const opened: SqliteStore[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "parley-rotation-"));
  keysDir = path.join(dataDir, "keys");
  await (await loadMasterKeys({ value: null, file: null, keysDir })).persist();
});
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function open(masterKeys: MasterKeyring): Promise<SqliteStore> {
  const store = await openSqliteStore({ path: path.join(dataDir, "parley.db"), auditKey: CONTRACT_AUDIT_KEY, masterKeys });
  opened.push(store);
  return store;
}

async function write(store: Store, conversation: string): Promise<string> {
  const doc = new Y.Doc();
  await store.appendBatch(appendsOf(conversation, alice, textUpdates(doc, 3, conversation)));
  await store.compact(conversation);
  await store.appendBatch(appendsOf(conversation, alice, textUpdates(doc, 1, `${conversation}-more`)));
  return doc.getText("body").toString();
}

function wrappingIds(): string[] {
  const db = new Database(path.join(dataDir, "keyring.db"), { readonly: true });
  try {
    return db.prepare("SELECT master_key_id FROM data_keys ORDER BY conversation_id").pluck().all() as string[];
  } finally {
    db.close();
  }
}

/** The stored ciphertexts of conv-1..3 (entries and snapshots), read beside the running store. */
function storedRecords(): string[] {
  const db = new Database(path.join(dataDir, "parley.db"), { readonly: true });
  try {
    const sql = `SELECT hex(payload) FROM entries WHERE conversation_id IN ('conv-1', 'conv-2', 'conv-3') AND payload IS NOT NULL
      UNION ALL SELECT hex(state) FROM snapshots WHERE conversation_id IN ('conv-1', 'conv-2', 'conv-3') ORDER BY 1`;
    return db.prepare(sql).pluck().all() as string[];
  } finally {
    db.close();
  }
}

async function rotate(): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: dataDir };
  for (const name of ["PARLEY_KEYS_DIR", "PARLEY_MASTER_KEY", "PARLEY_MASTER_KEY_FILE", "DATABASE_URL"]) delete env[name];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, "keys", "rotate-master"], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

it("re-wraps every data key under a new master key while a store runs, then retires the old key", async () => {
  const oldRing = readKeyring(keysDir);
  const oldId = oldRing.keys[0].id;
  const running = await open(readKeyring(keysDir));
  const texts = new Map<string, string>();
  for (const c of ["conv-1", "conv-2", "conv-3"]) texts.set(c, await write(running, c));
  const recordsBefore = storedRecords();

  // Written while the rotation runs: the running store may still wrap with the old key.
  const rotation = rotate();
  texts.set("conv-during", await write(running, "conv-during"));
  const result = await rotation;
  expect(result, result.stderr).toMatchObject({ code: 0 });
  const newId = readKeyring(keysDir).keys[0].id;
  expect(newId).not.toBe(oldId);
  expect(result.stdout).toContain(`master key ${oldId} -> ${newId}`);
  expect(result.stdout).toContain(`retired ${oldId}`);
  expect(await readdir(keysDir)).not.toContain(`master-${oldId}.key`);
  // Retired out of the keyring, kept aside for the backups made with it.
  expect(readRetiredKeys(keysDir).map((k) => k.id)).toEqual([oldId]);
  expect(new Set(wrappingIds())).toEqual(new Set([newId]));

  // The running store follows: a new conversation's key is wrapped by the new master key.
  texts.set("conv-after", await write(running, "conv-after"));
  expect(new Set(wrappingIds())).toEqual(new Set([newId]));
  await running.close();
  // No data was rewritten: the records written before the rotation are byte for byte the same.
  expect(storedRecords()).toEqual(recordsBefore);

  // With the old key file gone, everything reads with the new key alone.
  const reopened = await open(readKeyring(keysDir));
  for (const [conversation, text] of texts) expect(await loadText(reopened, conversation)).toBe(text);
  await reopened.close();

  // And the old key alone is refused, naming the key the data now needs.
  await expect(open({ keys: oldRing.keys })).rejects.toMatchObject({ message: expect.stringContaining(`master key ${newId}`) });
});

it("refuses to rotate a key given through PARLEY_MASTER_KEY, changing nothing", async () => {
  const before = await readFile(path.join(keysDir, "master.key"));
  const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: dataDir, PARLEY_MASTER_KEY: before.toString("base64") };
  delete env.PARLEY_KEYS_DIR;
  const failed = await promisify(execFile)(process.execPath, [BIN, "keys", "rotate-master"], { env }).catch((e) => e as { code: number; stderr: string });
  expect(failed).toMatchObject({ code: 2, stderr: expect.stringContaining("PARLEY_MASTER_KEY") });
  expect((await readFile(path.join(keysDir, "master.key"))).equals(before)).toBe(true);
});

const databaseUrl = await requirePostgres();

it.skipIf(!databaseUrl)("re-wraps the Postgres data_keys table; data reads with the new key alone", async () => {
  const url = databaseUrl as string;
  const schema = `parley_test_${randomBytes(6).toString("hex")}`;
  const open = (masterKeys: MasterKeyring) =>
    openPostgresStore({ connectionString: url, auditKey: CONTRACT_AUDIT_KEY, masterKeys, schema, poolSize: 2 });
  const oldRing = readKeyring(keysDir);
  const store = await open(readKeyring(keysDir));
  const table = await postgresKeyringTable(url, schema);
  try {
    const texts = new Map<string, string>();
    for (const c of ["pg-1", "pg-2"]) texts.set(c, await write(store, c));
    const result = await rotateMasterKey(keysDir, table, { settleMs: 10 });
    expect(result).toMatchObject({ previousId: oldRing.keys[0].id, rewrapped: 2, retired: [oldRing.keys[0].id] });
    expect(await table.masterIds()).toEqual([result.newId]);
    await store.close();
    const reopened = await open({ keys: readKeyring(keysDir).keys });
    for (const [conversation, text] of texts) expect(await loadText(reopened, conversation)).toBe(text);
    await reopened.close();
    await expect(open({ keys: oldRing.keys })).rejects.toMatchObject({ message: expect.stringContaining(`master key ${result.newId}`) });
  } finally {
    await store.close();
    await table.close();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});
