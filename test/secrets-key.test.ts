// The secrets key (TOTP seeds, webhook secrets) is kept only wrapped by the master key: the file
// on disk opens nothing without the keyring, a legacy plaintext key is wrapped and removed, and
// master key rotation re-wraps it before the old master key is retired.

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadMasterKeys, MasterKeyError, masterKey, type MasterKeyring, readKeyring } from "../server/crypto/master-key.ts";
import { openSecret, SecretKeyError, sealSecret } from "../server/crypto/secret-box.ts";
import { LEGACY_SECRETS_KEY_FILE, loadOrCreateSecretsKey, SECRETS_KEY_FILE } from "../server/crypto/secrets-key.ts";
import { rotateMasterKey, sqliteKeyringTable } from "../server/store/master-rotation.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import { KEYRING_FILE } from "../server/store/keyring.ts";
import { CONTRACT_AUDIT_KEY } from "./store-contract.ts";

let dataDir: string;
let keysDir: string;
let ring: MasterKeyring;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "parley-secrets-"));
  keysDir = path.join(dataDir, "keys");
  const loaded = await loadMasterKeys({ value: null, file: null, keysDir });
  await loaded.persist();
  ring = loaded.ring;
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function containsKey(file: Buffer, key: Uint8Array): boolean {
  const raw = Buffer.from(key);
  return file.includes(raw) || file.includes(Buffer.from(raw.toString("base64"))) || file.includes(Buffer.from(raw.toString("hex")));
}

describe("the secrets key at rest", () => {
  it("is created wrapped by the master key, private, never in the clear, and reused", async () => {
    const key = await loadOrCreateSecretsKey(keysDir, ring);
    expect(key.length).toBe(32);
    const file = path.join(keysDir, SECRETS_KEY_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(containsKey(await readFile(file), key)).toBe(false);
    expect(await readdir(keysDir)).not.toContain(LEGACY_SECRETS_KEY_FILE);
    expect(await loadOrCreateSecretsKey(keysDir, ring)).toEqual(key);
  });

  it("gives every concurrent starter (nodes sharing a keys directory) the same key", async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateSecretsKey(keysDir, ring)));
    for (const key of keys) expect(key).toEqual(keys[0]);
  });

  it("does not open with another master key, and names the key it needs", async () => {
    await loadOrCreateSecretsKey(keysDir, ring);
    const stranger = { keys: [masterKey(randomBytes(32))] };
    await expect(loadOrCreateSecretsKey(keysDir, stranger)).rejects.toThrow(MasterKeyError);
    await expect(loadOrCreateSecretsKey(keysDir, stranger)).rejects.toThrow(ring.keys[0].id);
  });

  it("refuses a tampered or relabelled file instead of using it", async () => {
    await loadOrCreateSecretsKey(keysDir, ring);
    const file = path.join(keysDir, SECRETS_KEY_FILE);
    const stored = JSON.parse(await readFile(file, "utf8")) as { sealed: string; masterKeyId: string };
    const sealed = Buffer.from(stored.sealed, "base64");
    sealed[sealed.length - 1] ^= 1;
    await writeFile(file, JSON.stringify({ ...stored, sealed: sealed.toString("base64") }));
    await expect(loadOrCreateSecretsKey(keysDir, ring)).rejects.toThrow(SecretKeyError);
    await writeFile(file, "not json");
    await expect(loadOrCreateSecretsKey(keysDir, ring)).rejects.toThrow(SecretKeyError);
  });

  it("wraps a legacy plaintext secrets.key on first start, keeps its value, and deletes the plaintext", async () => {
    const legacy = randomBytes(32);
    await mkdir(keysDir, { recursive: true });
    await writeFile(path.join(keysDir, LEGACY_SECRETS_KEY_FILE), legacy, { mode: 0o600 });
    const sealedBefore = sealSecret(legacy, Buffer.from("JBSWY3DPEHPK3PXP"), "totp:alice");
    const key = await loadOrCreateSecretsKey(keysDir, ring);
    expect(Buffer.from(key).equals(legacy)).toBe(true);
    expect(await readdir(keysDir)).not.toContain(LEGACY_SECRETS_KEY_FILE);
    expect(containsKey(await readFile(path.join(keysDir, SECRETS_KEY_FILE)), legacy)).toBe(false);
    // What the old server sealed still opens.
    expect(Buffer.from(openSecret(await loadOrCreateSecretsKey(keysDir, ring), sealedBefore, "totp:alice")).toString()).toBe("JBSWY3DPEHPK3PXP");
  });

  it("refuses a legacy key file of the wrong size instead of using it", async () => {
    await mkdir(keysDir, { recursive: true });
    await writeFile(path.join(keysDir, LEGACY_SECRETS_KEY_FILE), randomBytes(16), { mode: 0o600 });
    await expect(loadOrCreateSecretsKey(keysDir, ring)).rejects.toThrow(SecretKeyError);
  });

  it("is re-wrapped by master key rotation before the old master key is retired", async () => {
    const key = await loadOrCreateSecretsKey(keysDir, ring);
    // A store with no data keys: rotation retires the old master key at once.
    const store = await openSqliteStore({ path: path.join(dataDir, "parley.db"), auditKey: CONTRACT_AUDIT_KEY, masterKeys: ring });
    await store.close();
    const table = sqliteKeyringTable(path.join(dataDir, KEYRING_FILE));
    const result = await rotateMasterKey(keysDir, table, { settleMs: 0 });
    await table.close();
    expect(result.retired).toContain(ring.keys[0].id);
    const after = readKeyring(keysDir);
    expect(after.keys.map((k) => k.id)).toEqual([result.newId]);
    const stored = JSON.parse(await readFile(path.join(keysDir, SECRETS_KEY_FILE), "utf8")) as { masterKeyId: string };
    expect(stored.masterKeyId).toBe(result.newId);
    expect(await loadOrCreateSecretsKey(keysDir, after)).toEqual(key);
  });
});
