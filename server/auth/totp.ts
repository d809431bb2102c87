// Two-factor codes: TOTP (RFC 6238) enrolment and verification with replay protection, and
// one-time recovery codes for a person who lost their authenticator. Plain functions over plain
// data; the caller stores the secret (sealed), the last used step and the recovery-code hashes.

import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import { HOTP, Secret, TOTP } from "otpauth";

/** Authenticator-app defaults (Google Authenticator ignores anything else): 30 s, 6 digits, SHA-1. */
const PERIOD_SECONDS = 30;
const DIGITS = 6;
const ALGORITHM = "SHA1";
/** Steps either side of now that are accepted, for clock drift and typing time. */
const WINDOW = 1;
/** 160 bits, the key length RFC 4226 recommends for HMAC-SHA-1. */
const SECRET_BYTES = 20;
const CODE_PATTERN = /^\d{6}$/;

/** A new TOTP secret and the otpauth:// URI an authenticator app scans (as a QR code). */
export interface TotpEnrolment {
  /** The shared secret in base32; store it sealed (see secret-box.ts), never log it. */
  secret: string;
  uri: string;
}

/** When a code is checked, and the newest step already used by this account. */
export interface TotpCheckContext {
  /** The current time, milliseconds since the epoch. */
  now: number;
  /** The step of the last code accepted for this account; null if none yet. */
  lastUsedStep: number | null;
}

/** The verdict on a code; on success, store `step` as the account's new `lastUsedStep`. */
export type TotpVerification = { ok: true; step: number } | { ok: false };

/** The stored TOTP secret is not valid base32 (a corrupt row or a wrong decryption). */
export class TotpSecretError extends Error {
  override readonly name = "TotpSecretError";
}

/** Creates a fresh secret for `accountLabel` (e.g. the email) at `issuer` (e.g. "Parley"). */
export function createTotpEnrolment(accountLabel: string, issuer: string): TotpEnrolment {
  const secret = new Secret({ size: SECRET_BYTES });
  const totp = new TOTP({ issuer, label: accountLabel, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD_SECONDS, secret });
  return { secret: secret.base32, uri: totp.toString() };
}

/** The RFC 6238 time step (counter) that `now` falls in. */
export function totpStep(now: number): number {
  return Math.floor(now / 1000 / PERIOD_SECONDS);
}

/**
 * Checks a 6-digit code against the steps around `now`. A step at or before `lastUsedStep` is
 * never accepted, so a code (or an older one) observed once cannot be replayed. Every candidate
 * step is compared in constant time, and all of them always, so timing tells nothing about
 * which step almost matched.
 */
export function verifyTotp(secretBase32: string, code: string, context: TotpCheckContext): TotpVerification {
  let secret: Secret;
  try {
    secret = Secret.fromBase32(secretBase32);
  } catch {
    throw new TotpSecretError("stored TOTP secret is not valid base32");
  }
  if (secret.bytes.length === 0) throw new TotpSecretError("stored TOTP secret is empty");
  // People paste codes as "123 456"; anything else that is not six digits is simply wrong.
  const given = code.replace(/\s+/g, "");
  const wellFormed = CODE_PATTERN.test(given);
  const givenBytes = Buffer.from(wellFormed ? given : "0".repeat(DIGITS));
  const current = totpStep(context.now);
  let matched: number | null = null;
  for (let step = current - WINDOW; step <= current + WINDOW; step++) {
    const expected = Buffer.from(HOTP.generate({ secret, algorithm: ALGORITHM, digits: DIGITS, counter: step }));
    const equal = timingSafeEqual(expected, givenBytes);
    const fresh = context.lastUsedStep === null || step > context.lastUsedStep;
    if (equal && fresh && matched === null) matched = step;
  }
  return wellFormed && matched !== null ? { ok: true, step: matched } : { ok: false };
}

// ---------------------------------------------------------------------------------------------

/** Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud or retyped. */
const RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_GROUPS = 4;
const RECOVERY_GROUP_LENGTH = 4;

/**
 * One-time recovery codes like `7kq2-m9xd-4hc8-tv1z`: 16 symbols of 5 bits from the CSPRNG,
 * 80 bits each. Show them once; store only {@link hashRecoveryCode} of each.
 */
export function generateRecoveryCodes(count = 10): string[] {
  const codes: string[] = [];
  for (let n = 0; n < count; n++) {
    const groups: string[] = [];
    for (let g = 0; g < RECOVERY_GROUPS; g++) {
      let group = "";
      for (let i = 0; i < RECOVERY_GROUP_LENGTH; i++) group += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
      groups.push(group);
    }
    codes.push(groups.join("-"));
  }
  return codes;
}

/**
 * Case, spaces and dashes do not matter, and the letters people confuse with digits are read
 * as Crockford does (i, l → 1; o → 0).
 */
function normaliseRecoveryCode(code: string): string {
  return code
    .toLowerCase()
    .replace(/[\s-]+/g, "")
    .replace(/[il]/g, "1")
    .replace(/o/g, "0");
}

/**
 * SHA-256 of the normalised code, hex. A fast hash is enough here, unlike for passwords: each
 * code carries 80 random bits, so even with a stolen table an attacker must search 2^80
 * candidates per code, which no amount of hashing speed makes feasible, and no code is shared
 * between people, so salting would add nothing.
 */
export function hashRecoveryCode(code: string): string {
  return createHash("sha256").update(normaliseRecoveryCode(code)).digest("hex");
}

/** Whether `code` is the one behind `hash`, compared in constant time. */
export function recoveryCodeMatches(hash: string, code: string): boolean {
  const expected = Buffer.from(hash, "hex");
  const actual = createHash("sha256").update(normaliseRecoveryCode(code)).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
