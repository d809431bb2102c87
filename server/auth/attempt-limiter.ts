// Throttles guessing: counts failed attempts per key (an account, an IP, an invitation) and
// locks the key out for a while after too many. In memory, per node, with a hard cap on keys so
// an attacker inventing keys cannot exhaust memory. One instance per kind of secret guessed.

/** Settings of an {@link AttemptLimiter}. */
export interface AttemptLimiterOptions {
  /** Failures within `windowMs` that trigger a lockout. */
  maxAttempts: number;
  /** How long failures are remembered, counted from the first failure of a run. */
  windowMs: number;
  /** How long a key stays locked once it hits `maxAttempts`. */
  lockoutMs: number;
  /** Most keys remembered; the least recently failed are forgotten first. Default 100 000. */
  maxKeys?: number;
}

/** Whether an attempt may be made now; if not, when to try again. */
export type AttemptDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Settings out of range (a configuration mistake). */
export class AttemptLimiterConfigError extends Error {
  override readonly name = "AttemptLimiterConfigError";
}

interface Entry {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

const ALLOWED: AttemptDecision = Object.freeze({ allowed: true });

/**
 * Usage: `check` before verifying (refuse with Retry-After if not allowed), then `fail` or
 * `succeed` with the outcome. `now` is passed in (milliseconds) so tests control the clock.
 *
 * When the key cap is reached, the key whose last failure is oldest is forgotten even if it is
 * still locked: bounded memory wins over a perfect memory of lockouts. Pair an account limiter
 * with an IP limiter so an attacker cannot cheaply flush one with the other.
 */
export class AttemptLimiter {
  private readonly maxAttempts: number;
  private readonly windowMs: number;
  private readonly lockoutMs: number;
  private readonly maxKeys: number;
  /** Insertion order = order of last failure, oldest first (re-inserted on every failure). */
  private readonly entries = new Map<string, Entry>();

  constructor(options: AttemptLimiterOptions) {
    this.maxAttempts = options.maxAttempts;
    this.windowMs = options.windowMs;
    this.lockoutMs = options.lockoutMs;
    this.maxKeys = options.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new AttemptLimiterConfigError("maxAttempts must be a whole number ≥ 1");
    }
    if (!(this.windowMs > 0) || !(this.lockoutMs > 0)) {
      throw new AttemptLimiterConfigError("windowMs and lockoutMs must be positive");
    }
    if (!Number.isSafeInteger(this.maxKeys) || this.maxKeys < 1) {
      throw new AttemptLimiterConfigError("maxKeys must be a whole number ≥ 1");
    }
  }

  /** Number of keys currently remembered (for metrics and tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Whether `key` may attempt now. Never allocates, so probing unknown keys costs nothing. */
  check(key: string, now: number): AttemptDecision {
    const entry = this.entries.get(key);
    if (entry && now < entry.lockedUntil) return { allowed: false, retryAfterMs: entry.lockedUntil - now };
    return ALLOWED;
  }

  /** Records a failed attempt; answers what {@link check} would answer right after it. */
  fail(key: string, now: number): AttemptDecision {
    let entry = this.entries.get(key);
    if (entry && now < entry.lockedUntil) return { allowed: false, retryAfterMs: entry.lockedUntil - now };
    if (!entry || now - entry.windowStart >= this.windowMs) {
      entry = { failures: 0, windowStart: now, lockedUntil: 0 };
    }
    entry.failures++;
    if (entry.failures >= this.maxAttempts) {
      entry.lockedUntil = now + this.lockoutMs;
      // After the lockout a fresh run of attempts starts.
      entry.failures = 0;
      entry.windowStart = entry.lockedUntil;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.evict(now);
    return this.check(key, now);
  }

  /** Forgets the failures of `key` after a successful attempt. */
  succeed(key: string): void {
    this.entries.delete(key);
  }

  /** Drops expired keys from the old end, then the oldest ones while over the cap. */
  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      const expired = now >= entry.lockedUntil && now - entry.windowStart >= this.windowMs;
      if (expired) this.entries.delete(key);
      else if (this.entries.size > this.maxKeys) this.entries.delete(key);
      else break;
    }
  }
}
