// The Ed25519 key that signs audit checkpoints: <keysDir>/audit-signing-key.pem, generated like
// the token-signing key on first start (mode 0600) and shared by every node. Separate from the
// token key so either can be rotated or held by a different operator without touching the other.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { readOrCreate } from "../crypto/keys.ts";

/** The checkpoint signing key pair, with the public half as a JWK for exports. */
export interface CheckpointKey {
  /** Stable id derived from the public key, so every node (and every export) agrees on it. */
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a JWK (`{kty: "OKP", crv: "Ed25519", x, kid}`), what exports carry. */
  jwk: JsonWebKey & { kid: string };
}

export const CHECKPOINT_KEY_FILE = "audit-signing-key.pem";

/** Reads the checkpoint key from the keys directory, generating it if missing. */
export async function loadOrCreateCheckpointKey(keysDir: string): Promise<CheckpointKey> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const pem = await readOrCreate(path.join(keysDir, CHECKPOINT_KEY_FILE), () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    return Buffer.from(privateKey.export({ format: "pem", type: "pkcs8" }) as string);
  });
  const privateKey = createPrivateKey(pem);
  return checkpointKeyFrom(privateKey, createPublicKey(privateKey));
}

/** The public half only (what a verifier holds), from a JWK. */
export function checkpointPublicKey(jwk: JsonWebKey): KeyObject {
  return createPublicKey({ key: jwk, format: "jwk" });
}

function checkpointKeyFrom(privateKey: KeyObject, publicKey: KeyObject): CheckpointKey {
  const raw = publicKey.export({ format: "jwk" });
  const kid = `ckpt-${String(raw.x).slice(0, 16)}`;
  return { kid, privateKey, publicKey, jwk: { kty: raw.kty, crv: raw.crv, x: raw.x, kid } };
}
