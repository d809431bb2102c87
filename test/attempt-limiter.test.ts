// Guessing is throttled: too many failures lock a key out for a while, success forgets them,
// and the limiter's memory stays bounded however many keys an attacker invents.

import { describe, expect, it } from "vitest";
import { AttemptLimiter, AttemptLimiterConfigError } from "../server/auth/attempt-limiter.ts";

const T0 = 1_000_000;
const options = { maxAttempts: 3, windowMs: 60_000, lockoutMs: 300_000 };

describe("AttemptLimiter", () => {
  it("allows attempts until the limit, then locks the key out with a Retry-After", () => {
    const limiter = new AttemptLimiter(options);
    expect(limiter.check("alice", T0)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0 + 1_000)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0 + 2_000)).toEqual({ allowed: false, retryAfterMs: 300_000 });
    expect(limiter.check("alice", T0 + 102_000)).toEqual({ allowed: false, retryAfterMs: 200_000 });
  });

  it("refuses even the right answer during a lockout, and allows attempts again after it", () => {
    const limiter = new AttemptLimiter(options);
    for (let i = 0; i < 3; i++) limiter.fail("alice", T0);
    expect(limiter.check("alice", T0 + 299_999).allowed).toBe(false);
    expect(limiter.check("alice", T0 + 300_000)).toEqual({ allowed: true });
    // A fresh run of attempts, not an immediate relock.
    expect(limiter.fail("alice", T0 + 300_000)).toEqual({ allowed: true });
  });

  it("forgets failures older than the window", () => {
    const limiter = new AttemptLimiter(options);
    limiter.fail("alice", T0);
    limiter.fail("alice", T0 + 1_000);
    expect(limiter.fail("alice", T0 + 60_000)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0 + 61_000)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0 + 62_000).allowed).toBe(false);
  });

  it("forgets failures after a success", () => {
    const limiter = new AttemptLimiter(options);
    limiter.fail("alice", T0);
    limiter.fail("alice", T0);
    limiter.succeed("alice");
    expect(limiter.fail("alice", T0)).toEqual({ allowed: true });
    expect(limiter.fail("alice", T0)).toEqual({ allowed: true });
  });

  it("keeps keys apart: one account's lockout does not lock another", () => {
    const limiter = new AttemptLimiter(options);
    for (let i = 0; i < 3; i++) limiter.fail("login:alice", T0);
    expect(limiter.check("login:alice", T0).allowed).toBe(false);
    expect(limiter.check("login:bob", T0)).toEqual({ allowed: true });
  });

  it("does not remember keys that were only checked", () => {
    const limiter = new AttemptLimiter(options);
    for (let i = 0; i < 1_000; i++) limiter.check(`ip:${i}`, T0);
    expect(limiter.size).toBe(0);
  });

  it("stays within its key cap when flooded with invented keys", () => {
    const limiter = new AttemptLimiter({ ...options, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) limiter.fail(`ip:${i}`, T0 + i);
    expect(limiter.size).toBe(100);
    // The most recent failures are the ones remembered.
    limiter.fail("ip:9999", T0 + 10_000);
    expect(limiter.fail("ip:9999", T0 + 10_001).allowed).toBe(false);
  });

  it("drops expired keys as new failures arrive", () => {
    const limiter = new AttemptLimiter(options);
    for (let i = 0; i < 50; i++) limiter.fail(`ip:${i}`, T0);
    for (let i = 0; i < 3; i++) limiter.fail("locked", T0);
    expect(limiter.size).toBe(51);
    limiter.fail("later", T0 + 60_000);
    // The 50 single failures expired with their window; the lockout is still remembered.
    expect(limiter.size).toBe(2);
    expect(limiter.check("locked", T0 + 60_000).allowed).toBe(false);
  });

  it("refuses nonsensical settings", () => {
    expect(() => new AttemptLimiter({ ...options, maxAttempts: 0 })).toThrow(AttemptLimiterConfigError);
    expect(() => new AttemptLimiter({ ...options, windowMs: 0 })).toThrow(AttemptLimiterConfigError);
    expect(() => new AttemptLimiter({ ...options, lockoutMs: Number.NaN })).toThrow(AttemptLimiterConfigError);
    expect(() => new AttemptLimiter({ ...options, maxKeys: 0 })).toThrow(AttemptLimiterConfigError);
  });
});
