// Guessing is throttled: too many failures lock a key out for a while, success forgets them, and
// with Redis a lockout taken on one node holds on every other (the throttles count in the same
// limiter backend as the HTTP rate limits).

import { randomBytes } from "node:crypto";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AttemptLimiter, AttemptLimiterConfigError } from "../server/auth/attempt-limiter.ts";
import { type LimiterBackend, openLimiterBackend } from "../server/limits/limiter-backend.ts";
import { requireRedis } from "./helpers/services.ts";

const options = { maxAttempts: 3, windowMs: 60_000, lockoutMs: 300_000 };
const memory = () => openLimiterBackend({ redisUrl: null, keyPrefix: "test:" });

describe("AttemptLimiter in memory", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("allows attempts until the limit, then locks the key out with a Retry-After", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const limiter = new AttemptLimiter(memory(), "t", options);
    expect(await limiter.check("alice")).toEqual({ allowed: true });
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
    vi.advanceTimersByTime(1000);
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
    vi.advanceTimersByTime(1000);
    expect(await limiter.fail("alice")).toEqual({ allowed: false, retryAfterMs: 300_000 });
    vi.advanceTimersByTime(100_000);
    expect(await limiter.check("alice")).toEqual({ allowed: false, retryAfterMs: 200_000 });
  });

  it("refuses during a lockout, and allows a fresh run of attempts after it", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const limiter = new AttemptLimiter(memory(), "t", options);
    for (let i = 0; i < 3; i++) await limiter.fail("alice");
    vi.advanceTimersByTime(299_999);
    expect((await limiter.check("alice")).allowed).toBe(false);
    expect((await limiter.fail("alice")).allowed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await limiter.check("alice")).toEqual({ allowed: true });
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
  });

  it("forgets failures older than the window", async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const limiter = new AttemptLimiter(memory(), "t", options);
    await limiter.fail("alice");
    await limiter.fail("alice");
    vi.advanceTimersByTime(60_000);
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
    expect((await limiter.fail("alice")).allowed).toBe(false);
  });

  it("forgets failures after a success", async () => {
    const limiter = new AttemptLimiter(memory(), "t", options);
    await limiter.fail("alice");
    await limiter.fail("alice");
    await limiter.succeed("alice");
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
    expect(await limiter.fail("alice")).toEqual({ allowed: true });
  });

  it("keeps keys and limiters apart: one account's lockout does not lock another", async () => {
    const backend = memory();
    const logins = new AttemptLimiter(backend, "login", options);
    const codes = new AttemptLimiter(backend, "code", options);
    for (let i = 0; i < 3; i++) await logins.fail("alice");
    expect((await logins.check("alice")).allowed).toBe(false);
    expect(await logins.check("bob")).toEqual({ allowed: true });
    expect(await codes.check("alice")).toEqual({ allowed: true });
  });

  it("refuses nonsensical settings", () => {
    const backend = memory();
    expect(() => new AttemptLimiter(backend, "t", { ...options, maxAttempts: 0 })).toThrow(AttemptLimiterConfigError);
    expect(() => new AttemptLimiter(backend, "t", { ...options, windowMs: 0 })).toThrow(AttemptLimiterConfigError);
    expect(() => new AttemptLimiter(backend, "t", { ...options, lockoutMs: Number.NaN })).toThrow(AttemptLimiterConfigError);
  });
});

describe("AttemptLimiter on Redis", () => {
  let redisUrl: string | null = null;
  const backends: LimiterBackend[] = [];
  beforeAll(async () => {
    redisUrl = await requireRedis();
    return async () => {
      for (const backend of backends) await backend.close();
    };
  });

  it("holds a lockout taken on one node on another, and a success on either forgets it", async (context) => {
    if (!redisUrl) return context.skip();
    const keyPrefix = `parley-test:${randomBytes(5).toString("hex")}:`;
    const nodeA = openLimiterBackend({ redisUrl, keyPrefix });
    const nodeB = openLimiterBackend({ redisUrl, keyPrefix });
    backends.push(nodeA, nodeB);
    expect(await nodeA.ready(5000)).toBe(true);
    expect(await nodeB.ready(5000)).toBe(true);
    const onA = new AttemptLimiter(nodeA, "login", options);
    const onB = new AttemptLimiter(nodeB, "login", options);
    await onA.fail("alice");
    await onB.fail("alice");
    const locked = await onA.fail("alice");
    expect(locked.allowed).toBe(false);
    const seenOnB = await onB.check("alice");
    expect(seenOnB.allowed).toBe(false);
    if (!seenOnB.allowed) expect(seenOnB.retryAfterMs).toBeGreaterThan(290_000);
    expect(await onB.check("bob")).toEqual({ allowed: true });
    await onB.succeed("alice");
    expect(await onA.check("alice")).toEqual({ allowed: true });
  });
});
