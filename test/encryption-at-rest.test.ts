// Encryption at rest, proved on the real files and tables: no plaintext reaches the database, a
// ciphertext moved to another seq, kind or conversation fails with a clear error, destruction
// shreds the data key so even a copy of the data taken before cannot be read, and a store
// refuses a master key that did not wrap its data keys, naming the one it needs.

import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { loadMasterKeys, MasterKeyError, masterKey } from "../server/crypto/master-key.ts";
import { openPostgresStore } from "../server/store/postgres/postgres-store.ts";
import { openSqliteStore, type SqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { Store } from "../server/store/store.ts";
import { requirePostgres } from "./helpers/services.ts";
import { alice, appendsOf, CONTRACT_AUDIT_KEY, CONTRACT_MASTER_KEYS, loadText, textUpdates } from "./store-contract.ts";

const SECRET = "merger-codename-BLUE-HERON";
const OTHER_MASTER = { keys: [masterKey(new Uint8Array(32).fill(7))] };

/** Writes a conversation whose text holds SECRET, compacts it, and writes a little more. */
async function writeSecret(store: Store, conversation: string): Promise<string> {
  const doc = new Y.Doc();
  await store.appendBatch(appendsOf(conversation, alice, textUpdates(doc, 3, SECRET)));
  await store.compact(conversation);
  await store.appendBatch(appendsOf(conversation, alice, textUpdates(doc, 2, `${SECRET}-after`)));
  return doc.getText("body").toString();
}

describe("encryption at rest (SQLite)", () => {
  let dir: string;
  let path: string;
  let keyringPath: string;
  const opened: SqliteStore[] = [];

  async function open(masterKeys = CONTRACT_MASTER_KEYS, dataPath = path): Promise<SqliteStore> {
    const store = await openSqliteStore({ path: dataPath, keyringPath, auditKey: CONTRACT_AUDIT_KEY, masterKeys });
    opened.push(store);
    return store;
  }

  /** Edits the closed database file directly, as someone with disk access could. */
  function tamper(sql: string, ...values: unknown[]): void {
    const db = new Database(path);
    try {
      db.prepare(sql).run(...values);
    } finally {
      db.close();
    }
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "parley-encryption-"));
    path = join(dir, "parley.db");
    keyringPath = join(dir, "keyring.db");
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("never writes a known plaintext into the data or keyring files, and reads it back", async () => {
    const store = await open();
    const text = await writeSecret(store, "conv-secret");
    expect(await loadText(store, "conv-secret")).toBe(text);
    expect(text).toContain(SECRET);
    await store.close();
    for (const file of ["parley.db", "parley.db-wal", "keyring.db", "keyring.db-wal"]) {
      const bytes = await readFile(join(dir, file)).catch(() => Buffer.alloc(0));
      expect(bytes.includes(Buffer.from(SECRET)), file).toBe(false);
    }
    // The same check would have caught the plaintext: the marker is in what Yjs hands the store.
    expect(Buffer.from(textUpdates(new Y.Doc(), 1, SECRET)[0]).includes(Buffer.from(SECRET))).toBe(true);
  });

  it("refuses a ciphertext copied to another seq, another conversation or another kind", async () => {
    let store = await open();
    await writeSecret(store, "conv-a");
    await store.appendBatch(appendsOf("conv-b", alice, textUpdates(new Y.Doc(), 2)));
    await store.close();

    // Another seq of the same conversation (seq 5 is an update after the snapshot at seq 4).
    tamper("UPDATE entries SET payload = (SELECT payload FROM entries WHERE conversation_id = 'conv-a' AND seq = 6) WHERE conversation_id = 'conv-a' AND seq = 5");
    store = await open();
    await expect(store.loadDocument("conv-a")).rejects.toMatchObject({ code: "undecryptable", message: expect.stringMatching(/update at seq 5 of conversation "conv-a"/) });
    await expect(store.readUpdatesSince("conv-a", 4)).rejects.toMatchObject({ code: "undecryptable" });
    // The other conversation is untouched and still reads.
    expect((await store.loadDocument("conv-b")).updates).toHaveLength(2);
    await store.close();

    // Another conversation, same seq.
    tamper("UPDATE entries SET payload = (SELECT payload FROM entries WHERE conversation_id = 'conv-a' AND seq = 1) WHERE conversation_id = 'conv-b' AND seq = 1");
    store = await open();
    await expect(store.readUpdatesSince("conv-b", 0)).rejects.toMatchObject({ code: "undecryptable", message: expect.stringMatching(/seq 1 of conversation "conv-b"/) });
    await store.close();

    // Another kind: an update's ciphertext put in place of the snapshot state at the same conversation.
    tamper("UPDATE snapshots SET state = (SELECT payload FROM entries WHERE conversation_id = 'conv-a' AND seq = 1) WHERE conversation_id = 'conv-a'");
    store = await open();
    await expect(store.readEntries("conv-a", 0, 100)).rejects.toMatchObject({ code: "undecryptable" });
  });

  it("destroys a conversation: no rows, no data key, and a copy of the data taken before cannot be decrypted", async () => {
    let store = await open();
    await writeSecret(store, "conv-doomed");
    const keptText = await writeSecret(store, "conv-kept");
    await store.close();
    const backup = join(dir, "backup-parley.db");
    await copyFile(path, backup);

    store = await open();
    expect(await store.destroyConversation("conv-doomed")).toBe(true);
    await store.close();

    const data = new Database(path, { readonly: true });
    const keyring = new Database(keyringPath, { readonly: true });
    try {
      for (const [table, column] of [
        ["entries", "conversation_id"],
        ["snapshots", "conversation_id"],
        ["conversations", "id"],
      ]) {
        expect(data.prepare(`SELECT count(*) FROM ${table} WHERE ${column} = 'conv-doomed'`).pluck().get(), table).toBe(0);
      }
      expect(keyring.prepare("SELECT count(*) FROM data_keys WHERE conversation_id = 'conv-doomed'").pluck().get()).toBe(0);
      expect(keyring.prepare("SELECT count(*) FROM data_keys WHERE conversation_id = 'conv-kept'").pluck().get()).toBe(1);
    } finally {
      data.close();
      keyring.close();
    }

    // The backup copy, opened with the live keyring: every row is there, none of it readable.
    const restored = await open(CONTRACT_MASTER_KEYS, backup);
    await expect(restored.loadDocument("conv-doomed")).rejects.toMatchObject({ code: "undecryptable", message: expect.stringMatching(/no data key/) });
    await expect(restored.readEntries("conv-doomed", 0, 10)).rejects.toMatchObject({ code: "undecryptable" });
    expect(await loadText(restored, "conv-kept")).toBe(keptText);
  });

  it("refuses to open with another master key, naming the key it needs; nothing changes", async () => {
    const store = await open();
    const text = await writeSecret(store, "conv-1");
    await store.close();
    const before = await readFile(keyringPath);
    const needed = CONTRACT_MASTER_KEYS.keys[0].id;
    await expect(open(OTHER_MASTER)).rejects.toMatchObject({ message: expect.stringContaining(`master key ${needed}`) });
    expect((await readFile(keyringPath)).equals(before)).toBe(true);
    expect(await loadText(await open(), "conv-1")).toBe(text);
  });

  it("generates <keysDir>/master.key with mode 0600 only when persisted, then reuses it", async () => {
    const keysDir = join(dir, "keys");
    const first = await loadMasterKeys({ value: null, file: null, keysDir });
    expect(first.generated).toBe(true);
    await expect(stat(join(keysDir, "master.key"))).rejects.toMatchObject({ code: "ENOENT" });
    await first.persist();
    expect((await stat(join(keysDir, "master.key"))).mode & 0o777).toBe(0o600);
    const second = await loadMasterKeys({ value: null, file: null, keysDir });
    expect(second.generated).toBe(false);
    expect(second.ring.keys[0].id).toBe(first.ring.keys[0].id);

    const fromEnv = await loadMasterKeys({ value: Buffer.from(randomBytes(32)).toString("base64"), file: null, keysDir });
    expect(fromEnv.ring.keys[0].id).not.toBe(first.ring.keys[0].id);
    await expect(loadMasterKeys({ value: "dG9vIHNob3J0", file: null, keysDir })).rejects.toBeInstanceOf(MasterKeyError);
  });
});

const databaseUrl = await requirePostgres();

if (!databaseUrl) {
  describe("encryption at rest (Postgres)", () => {
    it.skip("needs a reachable Postgres (see the warning printed above)", () => {});
  });
} else {
  const url = databaseUrl;
  describe("encryption at rest (Postgres)", () => {
    const schema = `parley_test_${randomBytes(6).toString("hex")}`;
    const stores: Store[] = [];
    let admin: pg.Client;

    async function open(masterKeys = CONTRACT_MASTER_KEYS): Promise<Store> {
      const store = await openPostgresStore({ connectionString: url, auditKey: CONTRACT_AUDIT_KEY, masterKeys, schema, poolSize: 2 });
      stores.push(store);
      return store;
    }

    beforeEach(async () => {
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
    });
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });

    it("stores only ciphertext, refuses moved rows and another master key, and shreds on destruction", async () => {
      const store = await open();
      const text = await writeSecret(store, "conv-pg");
      await store.appendBatch(appendsOf("conv-pg-other", alice, textUpdates(new Y.Doc(), 2)));
      expect(await loadText(store, "conv-pg")).toBe(text);

      const rows = await admin.query<{ payload: Buffer | null }>(`SELECT payload FROM "${schema}".entries UNION ALL SELECT state FROM "${schema}".snapshots`);
      expect(rows.rows.length).toBeGreaterThan(0);
      for (const { payload } of rows.rows) expect(payload?.includes(Buffer.from(SECRET)) ?? false).toBe(false);

      await admin.query(
        `UPDATE "${schema}".entries SET payload = (SELECT payload FROM "${schema}".entries WHERE conversation_id = 'conv-pg' AND seq = 1)
         WHERE conversation_id = 'conv-pg-other' AND seq = 2`,
      );
      await expect(store.readUpdatesSince("conv-pg-other", 0)).rejects.toMatchObject({ code: "undecryptable", message: expect.stringMatching(/seq 2/) });

      const needed = CONTRACT_MASTER_KEYS.keys[0].id;
      await expect(open(OTHER_MASTER)).rejects.toMatchObject({ message: expect.stringContaining(`master key ${needed}`) });

      expect(await store.destroyConversation("conv-pg")).toBe(true);
      for (const [table, column] of [
        ["entries", "conversation_id"],
        ["snapshots", "conversation_id"],
        ["conversations", "id"],
        ["data_keys", "conversation_id"],
      ]) {
        const { rows: left } = await admin.query(`SELECT 1 FROM "${schema}".${table} WHERE ${column} = 'conv-pg'`);
        expect(left, table).toEqual([]);
      }
      await expect(store.appendBatch(appendsOf("conv-pg", alice, textUpdates(new Y.Doc(), 1)))).rejects.toMatchObject({ code: "invalid_request" });
    });
  });
}
