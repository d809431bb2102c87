// Small secrets at rest (TOTP seeds, webhook secrets) sealed with AES-256-GCM under the server's
// secrets key (itself kept wrapped by the master key: secrets-key.ts). Associated data names what
// the secret belongs to (`totp:<userId>`), so a sealed value copied into another row or another
// person's record no longer opens.

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** Format of a sealed value: version ‖ nonce ‖ ciphertext ‖ tag. Bump to change the layout. */
const VERSION = 1;
const KEY_BYTES = 32;
/** 96 bits, GCM's native size. Random nonces are safe up to 2^32 seals per key (NIST SP 800-38D), far more than a server seals small secrets. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES;

/** A sealed value did not open: tampered, truncated, wrong key or wrong associated data. */
export class SecretBoxError extends Error {
  override readonly name = "SecretBoxError";
}

/** The key given is not 32 bytes (a configuration mistake, not tampering). */
export class SecretKeyError extends Error {
  override readonly name = "SecretKeyError";
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new SecretKeyError(`secrets key must be ${KEY_BYTES} bytes, got ${key.length}`);
}

/** The version byte is authenticated too, so a value cannot be relabelled as another format. */
function additionalData(version: number, associatedData: string): Buffer {
  return Buffer.concat([Buffer.of(version), Buffer.from(associatedData, "utf8")]);
}

/** Encrypts `plaintext` bound to `associatedData`; a fresh random nonce every time. */
export function sealSecret(key32: Uint8Array, plaintext: Uint8Array, associatedData: string): Uint8Array {
  checkKey(key32);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key32, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(VERSION, associatedData));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const sealed = Buffer.concat([Buffer.of(VERSION), nonce, ciphertext, cipher.getAuthTag()]);
  return new Uint8Array(sealed.buffer, sealed.byteOffset, sealed.byteLength);
}

/** Decrypts a value from {@link sealSecret}; throws {@link SecretBoxError} unless it is intact. */
export function openSecret(key32: Uint8Array, sealed: Uint8Array, associatedData: string): Uint8Array {
  checkKey(key32);
  if (sealed.length < HEADER_BYTES + TAG_BYTES) throw new SecretBoxError("sealed secret is truncated");
  const version = sealed[0];
  if (version !== VERSION) throw new SecretBoxError(`sealed secret has unknown version ${version}`);
  const nonce = sealed.subarray(1, HEADER_BYTES);
  const ciphertext = sealed.subarray(HEADER_BYTES, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key32, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(additionalData(version, associatedData));
  decipher.setAuthTag(tag);
  try {
    const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  } catch {
    // Node says only "Unsupported state or unable to authenticate data"; so do we.
    throw new SecretBoxError("sealed secret failed authentication (tampered, wrong key or wrong owner)");
  }
}
