// Secrets at rest: AES-256-GCM sealed, bound to their owner by associated data, refusing any
// tampering. Where the key itself lives (wrapped by the master key): secrets-key.test.ts.

import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openSecret, SecretBoxError, SecretKeyError, sealSecret } from "../server/crypto/secret-box.ts";

const KEY = new Uint8Array(randomBytes(32));
const SEED = new TextEncoder().encode("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");

describe("sealSecret / openSecret", () => {
  it("opens what it sealed, for the same owner", () => {
    const sealed = sealSecret(KEY, SEED, "totp:alice");
    expect(sealed.length).toBe(1 + 12 + SEED.length + 16);
    expect(sealed[0]).toBe(1);
    expect(Buffer.from(sealed).includes(Buffer.from(SEED))).toBe(false);
    expect(openSecret(KEY, sealed, "totp:alice")).toEqual(SEED);
  });

  it("uses a fresh nonce for every seal", () => {
    const a = sealSecret(KEY, SEED, "totp:alice");
    const b = sealSecret(KEY, SEED, "totp:alice");
    expect(Buffer.from(a.subarray(1, 13)).equals(Buffer.from(b.subarray(1, 13)))).toBe(false);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it("refuses a sealed secret copied to another person's row", () => {
    const sealed = sealSecret(KEY, SEED, "totp:alice");
    expect(() => openSecret(KEY, sealed, "totp:mallory")).toThrow(SecretBoxError);
    expect(() => openSecret(KEY, sealed, "webhook:alice")).toThrow(SecretBoxError);
  });

  it("refuses any single flipped bit, anywhere", () => {
    const sealed = sealSecret(KEY, SEED, "totp:alice");
    for (let i = 0; i < sealed.length; i++) {
      const tampered = Uint8Array.from(sealed);
      tampered[i] ^= 0x01;
      expect(() => openSecret(KEY, tampered, "totp:alice")).toThrow(SecretBoxError);
    }
  });

  it("refuses a truncated value, an unknown version and the wrong key", () => {
    const sealed = sealSecret(KEY, SEED, "totp:alice");
    expect(() => openSecret(KEY, sealed.subarray(0, 28), "totp:alice")).toThrow(SecretBoxError);
    expect(() => openSecret(KEY, sealed.subarray(0, sealed.length - 1), "totp:alice")).toThrow(SecretBoxError);
    expect(() => openSecret(KEY, new Uint8Array(), "totp:alice")).toThrow(SecretBoxError);
    const otherKey = new Uint8Array(randomBytes(32));
    expect(() => openSecret(otherKey, sealed, "totp:alice")).toThrow(SecretBoxError);
    const version2 = Uint8Array.from(sealed);
    version2[0] = 2;
    expect(() => openSecret(KEY, version2, "totp:alice")).toThrow(/unknown version/);
  });

  it("seals an empty secret too", () => {
    const sealed = sealSecret(KEY, new Uint8Array(), "x");
    expect(openSecret(KEY, sealed, "x")).toEqual(new Uint8Array());
  });

  it("refuses a key that is not 32 bytes", () => {
    expect(() => sealSecret(new Uint8Array(16), SEED, "x")).toThrow(SecretKeyError);
    expect(() => openSecret(new Uint8Array(31), new Uint8Array(40), "x")).toThrow(SecretKeyError);
  });
});
