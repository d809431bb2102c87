// The secrets key (it seals TOTP seeds and webhook secrets, and keys invitation-code MACs) is kept
// only wrapped by the master key, in <keysDir>/secrets.key.wrapped: without the master key (the
// keyring), neither that file nor a backup holding it opens anything. A plaintext secrets.key
// left by an older server is wrapped on the first start and then removed.

import { randomBytes } from "node:crypto";
import { readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { readOrCreate, writePrivateTemp } from "./keys.ts";
import { MasterKeyError, type MasterKey, type MasterKeyring } from "./master-key.ts";
import { openSecret, SecretBoxError, SecretKeyError, sealSecret } from "./secret-box.ts";

export const SECRETS_KEY_FILE = "secrets.key.wrapped";
/** Where servers before wrapping kept the key in the clear. */
export const LEGACY_SECRETS_KEY_FILE = "secrets.key";
const KEY_BYTES = 32;

/** On disk: which master key wraps it, and the sealed key (secret-box format, bound to this purpose). */
interface WrappedSecretsKey {
  format: "parley-secrets-key";
  version: 1;
  masterKeyId: string;
  sealed: string;
}

/** Bound to the master key's id too, so a wrapped key cannot be relabelled as wrapped by another. */
const aad = (masterKeyId: string) => `secrets-key:${masterKeyId}`;

function wrap(master: MasterKey, raw: Uint8Array): Buffer {
  const file: WrappedSecretsKey = {
    format: "parley-secrets-key",
    version: 1,
    masterKeyId: master.id,
    sealed: Buffer.from(sealSecret(master.key, raw, aad(master.id))).toString("base64"),
  };
  return Buffer.from(`${JSON.stringify(file)}\n`);
}

function unwrap(content: Buffer, where: string, keys: readonly MasterKey[]): { raw: Uint8Array; masterKeyId: string } {
  let parsed: Partial<WrappedSecretsKey>;
  try {
    parsed = JSON.parse(content.toString("utf8")) as Partial<WrappedSecretsKey>;
  } catch {
    throw new SecretKeyError(`${where} is not a wrapped secrets key`);
  }
  if (parsed.format !== "parley-secrets-key" || parsed.version !== 1 || typeof parsed.masterKeyId !== "string" || typeof parsed.sealed !== "string") {
    throw new SecretKeyError(`${where} is not a wrapped secrets key (format ${JSON.stringify(parsed.format)}, version ${JSON.stringify(parsed.version)})`);
  }
  const master = keys.find((k) => k.id === parsed.masterKeyId);
  if (!master) {
    throw new MasterKeyError(`${where} is wrapped by master key ${parsed.masterKeyId}, which this server does not have (it has ${keys.map((k) => k.id).join(", ")})`);
  }
  try {
    const raw = openSecret(master.key, Buffer.from(parsed.sealed, "base64"), aad(master.id));
    if (raw.length !== KEY_BYTES) throw new SecretKeyError(`${where} holds a key of ${raw.length} bytes, not ${KEY_BYTES}`);
    return { raw, masterKeyId: master.id };
  } catch (error) {
    if (error instanceof SecretBoxError) throw new SecretKeyError(`${where} does not open with master key ${master.id}: tampered or replaced`);
    throw error;
  }
}

async function readLegacy(file: string): Promise<Buffer | null> {
  try {
    const raw = await readFile(file);
    if (raw.length !== KEY_BYTES) throw new SecretKeyError(`${file} must hold exactly ${KEY_BYTES} bytes, holds ${raw.length}`);
    return raw;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * The secrets key, unwrapped with the keyring. Created (random, wrapped by `ring.keys[0]`) on
 * the first start; a legacy plaintext secrets.key becomes the wrapped key and is deleted.
 * Concurrent starters (nodes sharing a keys directory) all get the same key.
 */
export async function loadOrCreateSecretsKey(keysDir: string, ring: MasterKeyring): Promise<Uint8Array> {
  const file = path.join(keysDir, SECRETS_KEY_FILE);
  const legacyFile = path.join(keysDir, LEGACY_SECRETS_KEY_FILE);
  const legacyKey = await readLegacy(legacyFile);
  const content = await readOrCreate(file, () => wrap(ring.keys[0], legacyKey ?? randomBytes(KEY_BYTES)));
  const { raw } = unwrap(content, file, ring.keys);
  // Only once the wrapped copy is durable (readOrCreate syncs it) may the plaintext go.
  if (legacyKey) {
    if (!Buffer.from(raw).equals(legacyKey)) {
      throw new SecretKeyError(`${file} and ${legacyFile} hold different keys: remove the one that is not in use`);
    }
    await unlink(legacyFile).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  return raw;
}

/**
 * Master key rotation: re-wraps the secrets key under `next` (atomically: readers see the old or
 * the new file). Returns false when there is no wrapped secrets key yet (nothing to do).
 */
export async function rewrapSecretsKey(keysDir: string, keys: readonly MasterKey[], next: MasterKey): Promise<boolean> {
  const file = path.join(keysDir, SECRETS_KEY_FILE);
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  const { raw, masterKeyId } = unwrap(content, file, [...keys, next]);
  if (masterKeyId === next.id) return false;
  await rename(await writePrivateTemp(file, wrap(next, raw)), file);
  return true;
}
