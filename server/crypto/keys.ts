// The server's own secrets on the embedded default: an Ed25519 token-signing key and the audit
// HMAC key, generated on first start into <dataDir>/keys with mode 0600 and reused afterwards.
// Several nodes must share these files (or be given the same ones by the operator).

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, unlink } from "node:fs/promises";
import path from "node:path";

/** Key material the server needs at runtime. */
export interface ServerKeys {
  /** Key id published in token headers (and, later, the JWKS). */
  signingKid: string;
  signingKey: KeyObject;
  verifyKey: KeyObject;
  /** Key for keyed content hashes in audit entries. */
  auditKey: Uint8Array;
}

/**
 * Reads a key file, or creates it with `create()`'s bytes (mode 0600) if missing. Shared by
 * every key the server keeps in `<dataDir>/keys` (also secret-box.ts).
 */
export async function readOrCreate(file: string, create: () => Buffer): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const content = create();
  // Write the whole file under a private name, then link it into place: link() fails with EEXIST
  // when another starter won the race (then we read theirs), and the file never appears
  // half-written. (Opening the final name with "wx" let a loser read it before it was written.)
  const temp = await writePrivateTemp(file, content);
  try {
    await link(temp, file);
    return content;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readFile(file);
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Writes `content` to a new private (0600) file beside `file`, synced to disk; returns its name. */
export async function writePrivateTemp(file: string, content: Uint8Array): Promise<string> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** Loads the keys from the keys directory (default `<dataDir>/keys`), generating any that are missing. */
export async function loadOrCreateKeys(dir: string): Promise<ServerKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pem = await readOrCreate(path.join(dir, "signing-key.pem"), () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    return Buffer.from(privateKey.export({ format: "pem", type: "pkcs8" }) as string);
  });
  const auditKey = await readOrCreate(path.join(dir, "audit-hmac.key"), () => randomBytes(32));
  if (auditKey.length < 32) throw new Error(`${path.join(dir, "audit-hmac.key")} must hold at least 32 bytes`);
  const signingKey = createPrivateKey(pem);
  const verifyKey = createPublicKey(signingKey);
  const raw = verifyKey.export({ format: "jwk" });
  // A stable kid derived from the public key, so every node with the same key agrees on it.
  const kid = Buffer.from(String(raw.x)).toString("base64url").slice(0, 16);
  return { signingKid: kid, signingKey, verifyKey, auditKey: new Uint8Array(auditKey) };
}
