// The password promise: at least 8 characters, long ones welcome but capped before hashing,
// breached and guessable ones refused with a strength score, argon2id at OWASP's parameters,
// hashing off the event loop and capped, re-hash when parameters change.

import * as argon2 from "argon2";
import { describe, expect, it } from "vitest";
import {
  checkPassword,
  HasherBusyError,
  MAX_PASSWORD_LENGTH,
  OWASP_MINIMUM_ARGON2,
  PasswordHasher,
  PasswordHasherConfigError,
  PasswordHashFormatError,
  PasswordTooLongError,
  parseArgon2Hash,
} from "../server/auth/passwords.ts";

/** Small parameters so the suite stays quick; only one test uses the real defaults. */
const FAST = { memoryKiB: 1024, timeCost: 1, parallelism: 1, allowBelowMinimum: true } as const;
const STRONG = "correct horse battery staple";
const CONTEXT = ["alice@acmecorp.example", "Alice Smith", "AcmeCorp"];

describe("checkPassword", () => {
  it("accepts a long passphrase and reports its strength", () => {
    const result = checkPassword(STRONG, CONTEXT);
    expect(result).toMatchObject({ acceptable: true, problems: [] });
    expect(result.score).toBeGreaterThanOrEqual(3);
  });

  it("refuses a password shorter than 8 characters, counting characters rather than UTF-16 units", () => {
    // Seven emoji are fourteen UTF-16 units but only seven characters.
    const seven = "🦊🐙🦉🐝🦔🐢🦩";
    expect(seven.length).toBe(14);
    expect(checkPassword(seven, []).problems).toContain("Use at least 8 characters.");
    expect(checkPassword(`${seven}🐳`, []).problems).not.toContain("Use at least 8 characters.");
    expect(checkPassword("Xq7#", []).acceptable).toBe(false);
  });

  it("refuses a password from the breached list, whatever its case", () => {
    for (const password of ["baseball", "Football", "iloveyou123"]) {
      const result = checkPassword(password, []);
      expect(result.acceptable).toBe(false);
      expect(result.problems).toContain("This password is on a list of common or breached passwords.");
    }
  });

  it("refuses a guessable password and says why and how to improve it", () => {
    const result = checkPassword("Password1!", []);
    expect(result.acceptable).toBe(false);
    expect(result.score).toBeLessThan(3);
    expect(result.problems.some((p) => p.startsWith("This password is too easy to guess"))).toBe(true);
    expect(result.suggestions.length).toBeGreaterThan(0);
  });

  it("scores a password built from the person's email and organisation lower", () => {
    for (const password of ["acmecorpalice", "acmecorp2024!", "alice@acmecorp.example"]) {
      expect(checkPassword(password, []).acceptable).toBe(true);
      const withContext = checkPassword(password, CONTEXT);
      expect(withContext.acceptable).toBe(false);
      expect(withContext.score).toBeLessThan(3);
    }
  });

  it("takes a configurable minimum score", () => {
    const password = "alice2024!";
    const result = checkPassword(password, CONTEXT);
    expect(result.score).toBe(2);
    expect(result.acceptable).toBe(false);
    expect(checkPassword(password, CONTEXT, { minimumScore: 2 }).acceptable).toBe(true);
  });

  it("accepts 1024 characters and refuses 1025 with a clear problem instead of truncating", () => {
    const body = "Vq9#".repeat(MAX_PASSWORD_LENGTH / 4 - 2);
    const atLimit = `${body}zT5!mR8&`;
    expect([...atLimit].length).toBe(MAX_PASSWORD_LENGTH);
    expect(checkPassword(atLimit, []).problems).not.toContain(`Use at most ${MAX_PASSWORD_LENGTH} characters.`);
    const over = `${atLimit}x`;
    expect(checkPassword(over, [])).toEqual({
      acceptable: false,
      score: 0,
      problems: [`Use at most ${MAX_PASSWORD_LENGTH} characters.`],
      suggestions: [],
    });
  });

  it("refuses a 10 MB password for the price of a length check", () => {
    const huge = "a".repeat(10 * 1024 * 1024);
    const started = performance.now();
    expect(checkPassword(huge, []).acceptable).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
  });

  it("refuses a password with a lone surrogate, which could not be stored faithfully", () => {
    expect(checkPassword(`${STRONG}\uD800`, []).acceptable).toBe(false);
  });
});

describe("PasswordHasher", () => {
  it("uses OWASP's minimum argon2id parameters by default, off the event loop", async () => {
    expect(OWASP_MINIMUM_ARGON2).toEqual({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    const hasher = new PasswordHasher();
    expect(hasher.parameters).toEqual({ memoryKiB: 19_456, timeCost: 2, parallelism: 1 });
    expect(hasher.maxConcurrent).toBe(4);

    // While a default-cost hash runs, timers keep firing: the work is on libuv's thread pool.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const hash = await hasher.hash(STRONG);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);

    expect(hash).toMatch(/^\$argon2id\$v=19\$/);
    expect(parseArgon2Hash(hash)).toMatchObject({
      algorithm: "argon2id",
      version: 0x13,
      memoryKiB: 19_456,
      timeCost: 2,
      parallelism: 1,
      saltBytes: 16,
      hashBytes: 32,
    });
  });

  it("refuses parameters below OWASP's minimum unless told it is a test", () => {
    expect(() => new PasswordHasher({ memoryKiB: 4096 })).toThrow(PasswordHasherConfigError);
    expect(() => new PasswordHasher({ timeCost: 1 })).toThrow(PasswordHasherConfigError);
    expect(() => new PasswordHasher({ maxConcurrent: 0 })).toThrow(PasswordHasherConfigError);
    expect(() => new PasswordHasher(FAST)).not.toThrow();
  });

  it("verifies the right password and refuses a wrong one", async () => {
    const hasher = new PasswordHasher(FAST);
    const hash = await hasher.hash(STRONG);
    expect(await hasher.verify(hash, STRONG)).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify(hash, "correct horse battery stapler")).toEqual({ ok: false, needsRehash: false });
  });

  it("salts every hash", async () => {
    const hasher = new PasswordHasher(FAST);
    expect(await hasher.hash(STRONG)).not.toBe(await hasher.hash(STRONG));
  });

  it("asks for a re-hash at login when the parameters have changed since the hash was made", async () => {
    const old = new PasswordHasher(FAST);
    const current = new PasswordHasher({ ...FAST, memoryKiB: 2048 });
    const hash = await old.hash(STRONG);
    expect(await current.verify(hash, STRONG)).toEqual({ ok: true, needsRehash: true });
    expect(await current.verify(hash, "wrong password")).toEqual({ ok: false, needsRehash: false });
    expect(current.needsRehash(await current.hash(STRONG))).toBe(false);

    // A hash of another argon2 variant is upgraded to argon2id too.
    const argon2i = await argon2.hash(STRONG, { type: argon2.argon2i, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    expect(await old.verify(argon2i, STRONG)).toEqual({ ok: true, needsRehash: true });
  });

  it("caps the length before hashing: a 10 MB password costs nothing", async () => {
    const hasher = new PasswordHasher(FAST);
    const hash = await hasher.hash(STRONG);
    const huge = "a".repeat(10 * 1024 * 1024);
    const started = performance.now();
    await expect(hasher.hash(huge)).rejects.toThrow(PasswordTooLongError);
    expect(await hasher.verify(hash, huge)).toEqual({ ok: false, needsRehash: false });
    expect(performance.now() - started).toBeLessThan(50);
  });

  it("treats differently composed accents as the same password", async () => {
    const hasher = new PasswordHasher(FAST);
    const composed = "caf\u00e9 au lait, s'il vous pla\u00eet";
    const decomposed = composed.normalize("NFD");
    expect(decomposed).not.toBe(composed);
    expect((await hasher.verify(await hasher.hash(composed), decomposed)).ok).toBe(true);
  });

  it("reports a stored hash it cannot read as a format error", async () => {
    const hasher = new PasswordHasher(FAST);
    for (const stored of ["", "plaintext", "$2b$10$abcdefghijklmnopqrstuv", "$argon2id$v=19$m=1024,t=1$c2FsdHNhbHQ$aGFzaA"]) {
      await expect(hasher.verify(stored, STRONG)).rejects.toThrow(PasswordHashFormatError);
    }
  });

  it("answers busy with a Retry-After beyond the concurrent and queued hashes", async () => {
    const hasher = new PasswordHasher({ ...FAST, maxConcurrent: 1, maxQueued: 1 });
    const running = hasher.hash(STRONG);
    const queued = hasher.hash(STRONG);
    const refused = hasher.hash(STRONG);
    await expect(refused).rejects.toBeInstanceOf(HasherBusyError);
    const error = await refused.catch((e: unknown) => e);
    expect((error as HasherBusyError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((error as HasherBusyError).code).toBe(5004);
    // The running and the queued hash both complete, and the hasher is free again after.
    await expect(Promise.all([running, queued])).resolves.toHaveLength(2);
    await expect(hasher.hash(STRONG)).resolves.toMatch(/^\$argon2id\$/);
  });

  it("spends a real hash on unknown accounts, so timing does not reveal which emails exist", async () => {
    const hasher = new PasswordHasher({ ...FAST, maxConcurrent: 1, maxQueued: 0 });
    for (let round = 0; round < 2; round++) {
      // The first call creates the dummy hash, later ones verify against it: both take the slot.
      const dummy = hasher.dummyVerify();
      await expect(hasher.hash(STRONG)).rejects.toBeInstanceOf(HasherBusyError);
      expect(await dummy).toEqual({ ok: false, needsRehash: false });
    }
  });
});
