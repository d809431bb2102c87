// The master key of encryption at rest: it wraps each conversation's data key (server/store/
// envelope.ts) and nothing else. From PARLEY_MASTER_KEY (base64 of 32 bytes), PARLEY_MASTER_KEY_FILE,
// or <keysDir>/master.key, generated with mode 0600 on the first start. Every master key has a
// short id stored beside each data key it wraps, so a store can tell which key it needs, and
// rotation (`parley keys rotate-master`) keeps the old key as <keysDir>/master-<id>.key until no
// data key is wrapped by it any more, then moves it to <keysDir>/retired-master-keys/ (backups).

import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { readOrCreate } from "./keys.ts";

export const MASTER_KEY_BYTES = 32;

/** One master key and its id (first 8 bytes of its SHA-256, hex: names the key, reveals nothing). */
export interface MasterKey {
  id: string;
  key: Uint8Array;
}

/**
 * The master keys a store may use: `keys[0]` wraps new data keys, the others only unwrap (a
 * rotation in progress). With `keysDir`, the store re-reads the key files when it meets an id it
 * does not hold or when master.key changes, so a running server follows a rotation.
 */
export interface MasterKeyring {
  keys: MasterKey[];
  keysDir?: string;
}

/** A wrong, missing or unusable master key: the server refuses to start. */
export class MasterKeyError extends Error {
  override readonly name = "MasterKeyError";
}

export function masterKeyId(key: Uint8Array): string {
  return createHash("sha256").update(key).digest().subarray(0, 8).toString("hex");
}

export function masterKey(key: Uint8Array): MasterKey {
  if (key.byteLength !== MASTER_KEY_BYTES) throw new MasterKeyError(`a master key must be ${MASTER_KEY_BYTES} bytes, got ${key.byteLength}`);
  return { id: masterKeyId(key), key: new Uint8Array(key) };
}

/** A key file holds either the 32 raw bytes or their base64 (a line an operator can paste). */
export function parseMasterKey(content: Uint8Array, where: string): MasterKey {
  if (content.byteLength === MASTER_KEY_BYTES) return masterKey(content);
  const text = Buffer.from(content).toString("utf8").trim();
  const bytes = Buffer.from(text, "base64");
  if (bytes.byteLength !== MASTER_KEY_BYTES || bytes.toString("base64").replace(/=+$/, "") !== text.replace(/=+$/, "")) {
    throw new MasterKeyError(`${where} must hold ${MASTER_KEY_BYTES} bytes, raw or base64`);
  }
  return masterKey(bytes);
}

export const MASTER_KEY_FILE = "master.key";
const RETIRED_FILE = /^master-([0-9a-f]{16})\.key$/;

/** An old master key kept in the store's keyring while data keys are still wrapped by it (rotation). */
export function retiredKeyFile(keysDir: string, id: string): string {
  return path.join(keysDir, `master-${id}.key`);
}

/**
 * Where rotation moves an old master key once no data key uses it: out of the store's keyring,
 * but kept for the backups made with it (their files are encrypted under it). Delete a key from
 * here once no backup made with it is kept.
 */
export const RETIRED_DIR = "retired-master-keys";

/** Master keys retired by rotation (see RETIRED_DIR), for opening old backups. */
export function readRetiredKeys(keysDir: string): MasterKey[] {
  const dir = path.join(keysDir, RETIRED_DIR);
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return names.filter((n) => RETIRED_FILE.test(n)).map((n) => parseMasterKey(readFileSync(path.join(dir, n)), path.join(dir, n)));
}

/** Where the master key comes from (the PARLEY_MASTER_KEY* settings; see config.ts). */
export interface MasterKeySettings {
  /** PARLEY_MASTER_KEY: base64 of 32 bytes. */
  value: string | null;
  /** PARLEY_MASTER_KEY_FILE. */
  file: string | null;
  keysDir: string;
}

/** The keyring as configured, plus `persist()` that writes a freshly generated key once the store accepted it. */
export interface LoadedMasterKeys {
  ring: MasterKeyring;
  /** True when no key existed and this start generated one (not yet on disk until persist()). */
  generated: boolean;
  persist(): Promise<void>;
}

/**
 * Loads the configured master key. Without one, a new key is generated in memory only: the caller
 * opens its store first (which refuses when the database holds data keys wrapped by another
 * master key, naming its id) and calls persist() after, so a server pointed at someone else's
 * database never writes a fresh key that would silently start a second key generation.
 */
export async function loadMasterKeys(settings: MasterKeySettings): Promise<LoadedMasterKeys> {
  const done = async () => {};
  if (settings.value) {
    return { ring: { keys: [parseMasterKey(Buffer.from(settings.value), "PARLEY_MASTER_KEY")] }, generated: false, persist: done };
  }
  if (settings.file) {
    const key = parseMasterKey(readFileSync(settings.file), settings.file);
    return { ring: { keys: [key] }, generated: false, persist: done };
  }
  await mkdir(settings.keysDir, { recursive: true, mode: 0o700 });
  try {
    return { ring: readKeyring(settings.keysDir), generated: false, persist: done };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const fresh = randomBytes(MASTER_KEY_BYTES);
  const file = path.join(settings.keysDir, MASTER_KEY_FILE);
  return {
    ring: { keys: [masterKey(fresh)], keysDir: settings.keysDir },
    generated: true,
    persist: async () => {
      const stored = await readOrCreate(file, () => fresh);
      if (!fresh.equals(stored)) throw new MasterKeyError(`${file} was created by another process meanwhile; start again`);
    },
  };
}

/** Reads <keysDir>/master.key (current) and every retired master-<id>.key beside it. Synchronous: start-up and rotation only. */
export function readKeyring(keysDir: string): MasterKeyring {
  const current = parseMasterKey(readFileSync(path.join(keysDir, MASTER_KEY_FILE)), path.join(keysDir, MASTER_KEY_FILE));
  const keys = [current];
  for (const name of readdirSync(keysDir).sort()) {
    const match = RETIRED_FILE.exec(name);
    if (!match || match[1] === current.id) continue;
    const key = parseMasterKey(readFileSync(path.join(keysDir, name)), path.join(keysDir, name));
    if (key.id !== match[1]) throw new MasterKeyError(`${path.join(keysDir, name)} holds key ${key.id}, not ${match[1]}`);
    keys.push(key);
  }
  return { keys, keysDir };
}
