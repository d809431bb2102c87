// The SDK's reconnect policy: exponential backoff with full jitter, capped, and token renewal timing.

import { describe, expect, it } from "vitest";
import {
  backoffCeiling,
  backoffDelay,
  DEFAULT_RECONNECT_POLICY,
  reconnectPolicy,
} from "../client-sdk/backoff.ts";
import { renewalDelay } from "../client-sdk/parley-client.ts";

const policy = { baseMs: 250, capMs: 10_000 };

describe("reconnect backoff", () => {
  it("defaults to 250 ms doubling up to 10 s", () => {
    expect(DEFAULT_RECONNECT_POLICY).toEqual({ baseMs: 250, capMs: 10_000 });
    expect(reconnectPolicy()).toEqual({ baseMs: 250, capMs: 10_000 });
    expect(reconnectPolicy({ capMs: 30_000 })).toEqual({ baseMs: 250, capMs: 30_000 });
  });

  it("doubles the ceiling per failed attempt until the cap", () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffCeiling(attempt, policy));
    expect(ceilings).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("never exceeds the cap, even after very many attempts", () => {
    expect(backoffCeiling(1_000, policy)).toBe(10_000);
    expect(backoffCeiling(Number.MAX_SAFE_INTEGER, policy)).toBe(10_000);
    expect(backoffDelay(1_000, policy, () => 0.999_999)).toBeLessThan(10_000);
  });

  it("draws the delay uniformly between zero and the ceiling (full jitter)", () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(1000);
    expect(backoffDelay(3, policy, () => 0.999_999)).toBe(1999);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(4, policy);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(4000);
    }
  });

  it("spreads reconnects of many clients instead of synchronising them", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, policy)));
    expect(delays.size).toBeGreaterThan(25);
  });

  it("treats a negative or fractional attempt as the first whole attempt", () => {
    expect(backoffCeiling(-3, policy)).toBe(250);
    expect(backoffCeiling(2.7, policy)).toBe(1000);
  });

  it("rejects unusable policies with a clear error", () => {
    expect(() => reconnectPolicy({ baseMs: 0 })).toThrow(/baseMs/);
    expect(() => reconnectPolicy({ baseMs: Number.NaN })).toThrow(/baseMs/);
    expect(() => reconnectPolicy({ baseMs: 500, capMs: 100 })).toThrow(/capMs/);
  });
});

describe("token renewal timing", () => {
  const now = 1_700_000_000_000;

  it("renews at 75% of the remaining lifetime for long-lived tokens", () => {
    expect(renewalDelay(now + 15 * 60_000, now)).toBe(0.75 * 15 * 60_000);
  });

  it("renews at least 5 s before expiry for short-lived tokens", () => {
    expect(renewalDelay(now + 12_000, now)).toBe(7_000);
  });

  it("never spins: waits at least a second even for tokens about to expire", () => {
    expect(renewalDelay(now + 3_000, now)).toBe(1_000);
    expect(renewalDelay(now - 60_000, now)).toBe(1_000);
  });

  it("stays within what setTimeout can represent", () => {
    expect(renewalDelay(now + 365 * 24 * 3_600_000, now)).toBe(2 ** 31 - 1);
  });
});
