// Passwords: the policy a new password must meet (length, not on the bundled breached list,
// strong enough by zxcvbn-ts) and argon2id hashing with explicit parameters, capped concurrency
// and a dummy verification so login timing does not reveal which accounts exist.

import { randomBytes } from "node:crypto";
import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import * as zxcvbnCommon from "@zxcvbn-ts/language-common";
import * as zxcvbnEn from "@zxcvbn-ts/language-en";
import * as argon2 from "argon2";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Fewest characters (code points) a password may have; the promise to customers. */
export const MIN_PASSWORD_LENGTH = 8;
/**
 * Most characters (code points) a password may have. Enforced before any hashing, so a
 * megabyte-long "password" is refused for the price of a length check, never truncated.
 */
export const MAX_PASSWORD_LENGTH = 1024;

/** A zxcvbn strength score: 0 (guessable in seconds) to 4 (very unguessable). */
export type PasswordScore = 0 | 1 | 2 | 3 | 4;

/** The verdict on a proposed password; `score` is returned by the API as a strength meter. */
export interface PasswordCheck {
  acceptable: boolean;
  score: PasswordScore;
  /** Why it is refused (empty when acceptable), in English sentences for people. */
  problems: string[];
  /** How to make it stronger (may be non-empty even when acceptable). */
  suggestions: string[];
}

/** Settings of the password policy. */
export interface PasswordPolicy {
  /** Lowest zxcvbn score accepted; default 3 ("safely unguessable"). */
  minimumScore?: PasswordScore;
}

/** Counts code points without walking a huge string: UTF-16 length bounds it from both sides. */
function exceedsCodePoints(text: string, limit: number): boolean {
  if (text.length <= limit) return false;
  if (text.length > 2 * limit) return true;
  let count = 0;
  for (const _ of text) {
    if (++count > limit) return true;
  }
  return false;
}

function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

interface Strength {
  zxcvbn: ZxcvbnFactory;
  /** The bundled list of common and breached passwords (@zxcvbn-ts/language-common). */
  breached: ReadonlySet<string>;
}

let strength: Strength | undefined;

/** Builds the zxcvbn-ts matcher once: it ranks ~100k dictionary words, too costly per call. */
function getStrength(): Strength {
  strength ??= {
    zxcvbn: new ZxcvbnFactory({
      dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEn.dictionary },
      graphs: zxcvbnCommon.adjacencyGraphs,
      translations: zxcvbnEn.translations,
      // zxcvbn runs synchronously on the event loop. With its defaults (256 characters, 100
      // l33t substitutions) a random 64-character password took a second and a 256-character
      // one four; with these caps the worst case we measured is tens of milliseconds, and the
      // scores of l33t-spelled common passwords ("P@ssw0rd!", "m0nk3y12") did not change.
      // Characters past the 64th are not analysed: a password that long is strong enough.
      maxLength: 64,
      l33tMaxSubstitutions: 6,
    }),
    // language-common's "passwords-common" is the bundled list of the most common passwords
    // seen in breaches (lower-case). Membership is an outright refusal, whatever zxcvbn scores.
    breached: new Set(zxcvbnCommon.dictionary["passwords-common"]),
  };
  return strength;
}

/** Context strings plus their word-like parts, so "alice@acme.example" also matches "acme". */
function userInputs(context: string[]): string[] {
  const inputs = new Set<string>();
  for (const item of context) {
    const value = item.trim().toLowerCase();
    if (!value) continue;
    inputs.add(value);
    for (const part of value.split(/[^\p{L}\p{N}]+/u)) {
      if (part.length >= 3) inputs.add(part);
    }
  }
  return [...inputs];
}

/**
 * Judges a proposed password. `context` holds what an attacker would try first for this person
 * (email, name, organisation name); passwords built from it score low.
 */
export function checkPassword(password: string, context: string[], policy: PasswordPolicy = {}): PasswordCheck {
  const minimumScore = policy.minimumScore ?? 3;
  if (exceedsCodePoints(password, MAX_PASSWORD_LENGTH)) {
    return {
      acceptable: false,
      score: 0,
      problems: [`Use at most ${MAX_PASSWORD_LENGTH} characters.`],
      suggestions: [],
    };
  }
  const problems: string[] = [];
  // A lone surrogate cannot be encoded as UTF-8; it would silently become U+FFFD when hashed.
  if (/\p{Cs}/u.test(password)) problems.push("The password contains characters that cannot be stored.");
  if (codePointLength(password) < MIN_PASSWORD_LENGTH) {
    problems.push(`Use at least ${MIN_PASSWORD_LENGTH} characters.`);
  }
  const { zxcvbn, breached } = getStrength();
  if (breached.has(password.toLowerCase())) {
    problems.push("This password is on a list of common or breached passwords.");
  }
  const result = zxcvbn.check(password, userInputs(context));
  if (result.score < minimumScore) {
    const warning = result.feedback.warning;
    problems.push(warning ? `This password is too easy to guess: ${warning}` : "This password is too easy to guess.");
  }
  return {
    acceptable: problems.length === 0,
    score: result.score,
    problems,
    suggestions: result.feedback.suggestions,
  };
}

// ---------------------------------------------------------------------------------------------

/** argon2id cost parameters, as stored in every hash's PHC string. */
export interface Argon2Parameters {
  /** Memory per hash in KiB (m). */
  memoryKiB: number;
  /** Passes over the memory (t). */
  timeCost: number;
  /** Lanes (p). */
  parallelism: number;
}

/**
 * OWASP Password Storage Cheat Sheet's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
 * Also the floor the hasher accepts unless told it is running in a test.
 */
export const OWASP_MINIMUM_ARGON2: Readonly<Argon2Parameters> = Object.freeze({
  memoryKiB: 19_456,
  timeCost: 2,
  parallelism: 1,
});

/** Settings of a {@link PasswordHasher}. */
export interface PasswordHasherOptions extends Partial<Argon2Parameters> {
  /** Hashes running at once on libuv's thread pool; default 4 (the pool's default size). */
  maxConcurrent?: number;
  /** Hashes waiting for a slot before further ones are refused; default 4 × maxConcurrent. */
  maxQueued?: number;
  /** Accept parameters below {@link OWASP_MINIMUM_ARGON2}; only tests should set this. */
  allowBelowMinimum?: boolean;
}

/** The outcome of checking a password against a stored hash. */
export interface PasswordVerification {
  ok: boolean;
  /** The password was right but the hash uses other parameters: store a fresh hash now. */
  needsRehash: boolean;
}

/** Every hashing slot and queue place is taken; answer 429 with Retry-After. */
export class HasherBusyError extends ParleyError {
  constructor(readonly retryAfterSeconds: number) {
    super(ErrorCode.RateLimited, "too many sign-ins at once; try again shortly");
  }
}

/** A password longer than {@link MAX_PASSWORD_LENGTH} was given to be hashed. */
export class PasswordTooLongError extends Error {
  override readonly name = "PasswordTooLongError";
  constructor() {
    super(`password longer than ${MAX_PASSWORD_LENGTH} characters`);
  }
}

/** A stored hash is not an argon2 PHC string this hasher understands (corrupt or foreign row). */
export class PasswordHashFormatError extends Error {
  override readonly name = "PasswordHashFormatError";
}

/** Hasher parameters are out of range (a configuration mistake). */
export class PasswordHasherConfigError extends Error {
  override readonly name = "PasswordHasherConfigError";
}

/** The parts of an argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). */
export interface Argon2HashInfo extends Argon2Parameters {
  algorithm: "argon2d" | "argon2i" | "argon2id";
  version: number;
  saltBytes: number;
  hashBytes: number;
}

const HASH_BYTES = 32;
const ARGON2_VERSION = 0x13;

function base64Bytes(text: string): number {
  if (!/^[A-Za-z0-9+/]+$/.test(text)) return -1;
  return Math.floor((text.length * 3) / 4);
}

/** Parses a stored argon2 hash; throws {@link PasswordHashFormatError} if it is not one. */
export function parseArgon2Hash(phc: string): Argon2HashInfo {
  const parts = phc.split("$");
  // Version 0x10 hashes omit the v= field.
  if (parts.length === 5) parts.splice(2, 0, "v=16");
  const [empty, algorithm, versionField, paramsField, salt, hash] = parts;
  if (parts.length !== 6 || empty !== "") throw new PasswordHashFormatError("not a PHC string");
  if (algorithm !== "argon2id" && algorithm !== "argon2i" && algorithm !== "argon2d") {
    throw new PasswordHashFormatError("not an argon2 hash");
  }
  const version = /^v=(\d+)$/.exec(versionField)?.[1];
  const params = new Map<string, number>();
  for (const pair of paramsField.split(",")) {
    const match = /^([a-z]+)=(\d+)$/.exec(pair);
    if (!match) throw new PasswordHashFormatError("malformed argon2 parameters");
    params.set(match[1], Number(match[2]));
  }
  const memoryKiB = params.get("m");
  const timeCost = params.get("t");
  const parallelism = params.get("p");
  const saltBytes = base64Bytes(salt);
  const hashBytes = base64Bytes(hash);
  if (version === undefined || memoryKiB === undefined || timeCost === undefined || parallelism === undefined) {
    throw new PasswordHashFormatError("argon2 hash lacks v, m, t or p");
  }
  if (saltBytes < 8 || hashBytes < 4) throw new PasswordHashFormatError("malformed argon2 salt or hash");
  return { algorithm, version: Number(version), memoryKiB, timeCost, parallelism, saltBytes, hashBytes };
}

/**
 * Hashes and verifies passwords with argon2id. node-argon2 runs each hash on libuv's thread
 * pool, so the event loop stays free; at most `maxConcurrent` run at once (each holds
 * `memoryKiB` of memory), up to `maxQueued` more wait in FIFO order, and beyond that callers
 * get {@link HasherBusyError} at once: a short queue smooths bursts of sign-ins while a flood
 * is refused quickly instead of piling up latency and memory.
 */
export class PasswordHasher {
  readonly parameters: Readonly<Argon2Parameters>;
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  /** Smoothed duration of one hash, for Retry-After. */
  private averageMs = 100;
  private dummyHash: string | undefined;

  constructor(options: PasswordHasherOptions = {}) {
    this.parameters = Object.freeze({
      memoryKiB: options.memoryKiB ?? OWASP_MINIMUM_ARGON2.memoryKiB,
      timeCost: options.timeCost ?? OWASP_MINIMUM_ARGON2.timeCost,
      parallelism: options.parallelism ?? OWASP_MINIMUM_ARGON2.parallelism,
    });
    this.maxConcurrent = options.maxConcurrent ?? 4;
    this.maxQueued = options.maxQueued ?? 4 * this.maxConcurrent;
    const { memoryKiB, timeCost, parallelism } = this.parameters;
    const integers = [memoryKiB, timeCost, parallelism, this.maxConcurrent, this.maxQueued];
    if (!integers.every(Number.isSafeInteger) || this.maxQueued < 0 || this.maxConcurrent < 1) {
      throw new PasswordHasherConfigError("argon2 parameters and limits must be whole numbers, maxConcurrent ≥ 1");
    }
    if (timeCost < 1 || parallelism < 1 || parallelism > 255 || memoryKiB < 8 * parallelism) {
      throw new PasswordHasherConfigError("argon2 needs t ≥ 1, 1 ≤ p ≤ 255 and m ≥ 8·p KiB");
    }
    if (
      !options.allowBelowMinimum &&
      (memoryKiB < OWASP_MINIMUM_ARGON2.memoryKiB ||
        timeCost < OWASP_MINIMUM_ARGON2.timeCost ||
        parallelism < OWASP_MINIMUM_ARGON2.parallelism)
    ) {
      throw new PasswordHasherConfigError(
        `argon2id parameters below OWASP's minimum (m=${OWASP_MINIMUM_ARGON2.memoryKiB} KiB, t=${OWASP_MINIMUM_ARGON2.timeCost}, p=${OWASP_MINIMUM_ARGON2.parallelism})`,
      );
    }
  }

  /** Hashes a new password into a PHC string. Run {@link checkPassword} first. */
  async hash(password: string): Promise<string> {
    if (exceedsCodePoints(password, MAX_PASSWORD_LENGTH)) throw new PasswordTooLongError();
    return this.withSlot(() => argon2.hash(normalise(password), this.argon2Options()));
  }

  /**
   * Checks a password against a stored hash. A too-long password cannot match anything we
   * stored, so it is refused without hashing.
   */
  async verify(storedHash: string, password: string): Promise<PasswordVerification> {
    const info = parseArgon2Hash(storedHash);
    if (exceedsCodePoints(password, MAX_PASSWORD_LENGTH)) return { ok: false, needsRehash: false };
    let ok: boolean;
    try {
      ok = await this.withSlot(() => argon2.verify(storedHash, normalise(password)));
    } catch (error) {
      if (error instanceof HasherBusyError) throw error;
      throw new PasswordHashFormatError(`argon2 could not verify the stored hash: ${(error as Error).message}`);
    }
    return { ok, needsRehash: ok && this.differsFromCurrent(info) };
  }

  /**
   * Spends the same work as a verification, for a sign-in to an account that does not exist
   * (or has no password), so the response time does not tell the caller which emails exist.
   * Always answers "wrong password".
   */
  async dummyVerify(): Promise<PasswordVerification> {
    if (this.dummyHash === undefined) {
      // The first call creates the hash, which costs as much as a verification would.
      const created = await this.withSlot(() =>
        argon2.hash(randomBytes(16).toString("base64url"), this.argon2Options()),
      );
      this.dummyHash ??= created;
    } else {
      const hash = this.dummyHash;
      await this.withSlot(() => argon2.verify(hash, "\u0000 not the password"));
    }
    return { ok: false, needsRehash: false };
  }

  /** Whether a stored hash was made with other settings than the current ones. */
  needsRehash(storedHash: string): boolean {
    return this.differsFromCurrent(parseArgon2Hash(storedHash));
  }

  private differsFromCurrent(info: Argon2HashInfo): boolean {
    const current = this.parameters;
    return (
      info.algorithm !== "argon2id" ||
      info.version !== ARGON2_VERSION ||
      info.memoryKiB !== current.memoryKiB ||
      info.timeCost !== current.timeCost ||
      info.parallelism !== current.parallelism ||
      info.hashBytes !== HASH_BYTES
    );
  }

  private argon2Options() {
    return {
      type: argon2.argon2id,
      memoryCost: this.parameters.memoryKiB,
      timeCost: this.parameters.timeCost,
      parallelism: this.parameters.parallelism,
      hashLength: HASH_BYTES,
    } as const;
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    const started = monotonicClock();
    try {
      return await work();
    } finally {
      this.averageMs = 0.8 * this.averageMs + 0.2 * (monotonicClock() - started);
      this.release();
    }
  }

  private acquire(): Promise<void> | void {
    if (this.inFlight < this.maxConcurrent) {
      this.inFlight++;
      return;
    }
    if (this.waiting.length >= this.maxQueued) {
      const ahead = this.inFlight + this.waiting.length;
      const seconds = Math.ceil((this.averageMs * ahead) / this.maxConcurrent / 1000);
      throw new HasherBusyError(Math.max(1, seconds));
    }
    // The releasing hash hands its slot straight to the first waiter; inFlight stays the same.
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
}

/**
 * NFKC, as NIST SP 800-63B advises: the same password typed on a keyboard that composes accents
 * differently (macOS vs. Windows) must give the same bytes. Applied to both hash and verify.
 */
function normalise(password: string): string {
  return password.normalize("NFKC");
}
