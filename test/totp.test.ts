// Two-factor promise: TOTP per RFC 6238 (30 s, 6 digits, ±1 step, no code accepted twice) and
// one-time recovery codes that are stored only as hashes.

import { Secret, TOTP } from "otpauth";
import { describe, expect, it } from "vitest";
import {
  createTotpEnrolment,
  generateRecoveryCodes,
  hashRecoveryCode,
  recoveryCodeMatches,
  TotpSecretError,
  totpStep,
  verifyTotp,
} from "../server/auth/totp.ts";

/** RFC 6238 appendix B's SHA-1 seed, the ASCII "12345678901234567890", in base32. */
const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const NOW = Date.UTC(2030, 0, 1, 12, 0, 10);

function codeAt(secret: string, timestamp: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp });
}

describe("TOTP", () => {
  it("enrols with a 160-bit secret and an otpauth URI an authenticator app understands", () => {
    const { secret, uri } = createTotpEnrolment("alice@acme.example", "Parley");
    expect(Secret.fromBase32(secret).bytes.length).toBe(20);
    const url = new URL(uri);
    expect(url.protocol).toBe("otpauth:");
    expect(url.host).toBe("totp");
    expect(decodeURIComponent(url.pathname)).toBe("/Parley:alice@acme.example");
    expect(url.searchParams.get("secret")).toBe(secret);
    expect(url.searchParams.get("issuer")).toBe("Parley");
    expect(url.searchParams.get("algorithm")).toBe("SHA1");
    expect(url.searchParams.get("digits")).toBe("6");
    expect(url.searchParams.get("period")).toBe("30");
    expect(createTotpEnrolment("alice@acme.example", "Parley").secret).not.toBe(secret);
  });

  it("matches the RFC 6238 test vectors (SHA-1, last six digits)", () => {
    const vectors: Array<[number, string]> = [
      [59, "287082"],
      [1_111_111_109, "081804"],
      [1_111_111_111, "050471"],
      [1_234_567_890, "005924"],
      [2_000_000_000, "279037"],
    ];
    for (const [seconds, code] of vectors) {
      const now = seconds * 1000;
      expect(verifyTotp(RFC_SECRET, code, { now, lastUsedStep: null })).toEqual({ ok: true, step: totpStep(now) });
    }
  });

  it("accepts the current code and says which step it used", () => {
    const { secret } = createTotpEnrolment("a", "Parley");
    expect(verifyTotp(secret, codeAt(secret, NOW), { now: NOW, lastUsedStep: null })).toEqual({
      ok: true,
      step: Math.floor(NOW / 30_000),
    });
  });

  it("accepts a code from one step before or after, for clock drift, but not two", () => {
    const { secret } = createTotpEnrolment("a", "Parley");
    const step = totpStep(NOW);
    for (const offset of [-1, 1]) {
      const code = codeAt(secret, NOW + offset * 30_000);
      expect(verifyTotp(secret, code, { now: NOW, lastUsedStep: null })).toEqual({ ok: true, step: step + offset });
    }
    for (const offset of [-2, 2]) {
      const code = codeAt(secret, NOW + offset * 30_000);
      expect(verifyTotp(secret, code, { now: NOW, lastUsedStep: null })).toEqual({ ok: false });
    }
  });

  it("refuses a code already used", () => {
    const { secret } = createTotpEnrolment("a", "Parley");
    const code = codeAt(secret, NOW);
    const first = verifyTotp(secret, code, { now: NOW, lastUsedStep: null });
    expect(first.ok).toBe(true);
    const lastUsedStep = first.ok ? first.step : null;
    // Replayed within the same 30 seconds, and a few seconds later while it is still in the window.
    expect(verifyTotp(secret, code, { now: NOW, lastUsedStep })).toEqual({ ok: false });
    expect(verifyTotp(secret, code, { now: NOW + 25_000, lastUsedStep })).toEqual({ ok: false });
  });

  it("refuses an older code once a newer one was used", () => {
    const { secret } = createTotpEnrolment("a", "Parley");
    const step = totpStep(NOW);
    const previous = codeAt(secret, NOW - 30_000);
    expect(verifyTotp(secret, previous, { now: NOW, lastUsedStep: step })).toEqual({ ok: false });
    const next = codeAt(secret, NOW + 30_000);
    expect(verifyTotp(secret, next, { now: NOW, lastUsedStep: step })).toEqual({ ok: true, step: step + 1 });
  });

  it("refuses malformed codes and accepts one typed with a space", () => {
    const { secret } = createTotpEnrolment("a", "Parley");
    const code = codeAt(secret, NOW);
    const context = { now: NOW, lastUsedStep: null };
    for (const bad of ["", "12345", "1234567", "abcdef", `${code}0`, code.slice(1), "١٢٣٤٥٦"]) {
      expect(verifyTotp(secret, bad, context)).toEqual({ ok: false });
    }
    expect(verifyTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, context).ok).toBe(true);
  });

  it("reports an unreadable stored secret as a typed error", () => {
    expect(() => verifyTotp("not base32!", "123456", { now: NOW, lastUsedStep: null })).toThrow(TotpSecretError);
    expect(() => verifyTotp("", "123456", { now: NOW, lastUsedStep: null })).toThrow(TotpSecretError);
  });
});

describe("recovery codes", () => {
  it("generates ten distinct codes of 80 random bits in readable groups", () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
    expect(generateRecoveryCodes(3)).toHaveLength(3);
  });

  it("stores only a hash, which matches the code however it is typed", () => {
    const [code] = generateRecoveryCodes(1);
    const hash = hashRecoveryCode(code);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(code.replace(/-/g, ""));
    expect(recoveryCodeMatches(hash, code)).toBe(true);
    expect(recoveryCodeMatches(hash, code.toUpperCase())).toBe(true);
    expect(recoveryCodeMatches(hash, code.replace(/-/g, ""))).toBe(true);
    expect(recoveryCodeMatches(hash, ` ${code.replace(/-/g, " ")} `)).toBe(true);
  });

  it("reads letters people confuse with digits as the digits", () => {
    const hash = hashRecoveryCode("1010-abcd-0000-1111");
    expect(recoveryCodeMatches(hash, "IOLO-ABCD-OOOO-iLlI")).toBe(true);
  });

  it("refuses another code, and a malformed stored hash", () => {
    const [one, other] = generateRecoveryCodes(2);
    expect(recoveryCodeMatches(hashRecoveryCode(one), other)).toBe(false);
    expect(recoveryCodeMatches("not-a-hash", one)).toBe(false);
    expect(recoveryCodeMatches("", one)).toBe(false);
  });
});
