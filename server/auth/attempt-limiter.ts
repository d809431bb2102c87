// Throttles guessing: counts failed attempts per key (an account, an address, an invitation) and
// locks the key out for a while after too many. Counts live in the node's limiter backend
// (server/limits/): Redis when the nodes share one, so a lockout holds on every node.

import type { RateLimiterAbstract } from "rate-limiter-flexible";
import { RateLimiterRes } from "rate-limiter-flexible";
import type { LimiterBackend } from "../limits/limiter-backend.ts";

/** Settings of an {@link AttemptLimiter}. */
export interface AttemptLimiterOptions {
  /** Failures within `windowMs` that trigger a lockout. */
  maxAttempts: number;
  /** How long failures are remembered, counted from the first failure of a run (whole seconds). */
  windowMs: number;
  /** How long a key stays locked once it hits `maxAttempts` (whole seconds). */
  lockoutMs: number;
}

/** Whether an attempt may be made now; if not, when to try again. */
export type AttemptDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Settings out of range (a configuration mistake). */
export class AttemptLimiterConfigError extends Error {
  override readonly name = "AttemptLimiterConfigError";
}

const ALLOWED: AttemptDecision = Object.freeze({ allowed: true });

/**
 * Usage: `check` before verifying (refuse with Retry-After if not allowed), then `fail` or
 * `succeed` with the outcome. Pair an account limiter with an address limiter so an attacker
 * cannot lock one out cheaply through the other.
 */
export class AttemptLimiter {
  private readonly limiter: RateLimiterAbstract;
  private readonly maxAttempts: number;
  private readonly lockoutSeconds: number;

  constructor(backend: LimiterBackend, name: string, options: AttemptLimiterOptions) {
    if (!Number.isSafeInteger(options.maxAttempts) || options.maxAttempts < 1) {
      throw new AttemptLimiterConfigError("maxAttempts must be a whole number ≥ 1");
    }
    if (!(options.windowMs >= 1000) || !(options.lockoutMs >= 1000)) {
      throw new AttemptLimiterConfigError("windowMs and lockoutMs must be at least a second");
    }
    this.maxAttempts = options.maxAttempts;
    this.lockoutSeconds = Math.ceil(options.lockoutMs / 1000);
    this.limiter = backend.create(`attempts:${name}:`, { points: options.maxAttempts, durationSeconds: Math.ceil(options.windowMs / 1000) });
  }

  /** Whether `key` may attempt now; reading creates nothing, so probing unknown keys costs nothing. */
  async check(key: string): Promise<AttemptDecision> {
    const state = await this.limiter.get(key);
    if (state && state.consumedPoints > this.maxAttempts) return { allowed: false, retryAfterMs: state.msBeforeNext };
    return ALLOWED;
  }

  /** Records a failed attempt; answers what {@link check} would answer right after it. */
  async fail(key: string): Promise<AttemptDecision> {
    let state: RateLimiterRes;
    try {
      state = await this.limiter.consume(key);
    } catch (refusal) {
      if (refusal instanceof RateLimiterRes) return { allowed: false, retryAfterMs: refusal.msBeforeNext };
      throw refusal;
    }
    if (state.consumedPoints < this.maxAttempts) return ALLOWED;
    // The run is complete: lock the key; after the lockout a fresh run of attempts starts.
    await this.limiter.block(key, this.lockoutSeconds);
    return { allowed: false, retryAfterMs: this.lockoutSeconds * 1000 };
  }

  /** Forgets the failures of `key` after a successful attempt. */
  async succeed(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}
