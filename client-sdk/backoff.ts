// Reconnect delays: exponential backoff with full jitter, so that a server restart is not followed
// by every client reconnecting in the same instant. Plain functions over a plain policy.

/** How long to wait between reconnect attempts. */
export interface ReconnectPolicy {
  /** Upper bound of the first delay, in milliseconds (doubled per failed attempt). */
  baseMs: number;
  /** Largest delay ever waited, in milliseconds. */
  capMs: number;
}

/** The default policy: 250 ms doubling up to 10 s. */
export const DEFAULT_RECONNECT_POLICY: Readonly<ReconnectPolicy> = { baseMs: 250, capMs: 10_000 };

/** Fills in a partial policy from the defaults and checks it is usable. */
export function reconnectPolicy(overrides: Partial<ReconnectPolicy> = {}): ReconnectPolicy {
  const policy = { ...DEFAULT_RECONNECT_POLICY, ...overrides };
  if (!(Number.isFinite(policy.baseMs) && policy.baseMs > 0)) {
    throw new RangeError("reconnect.baseMs must be a positive number");
  }
  if (!(Number.isFinite(policy.capMs) && policy.capMs >= policy.baseMs)) {
    throw new RangeError("reconnect.capMs must be a number no smaller than reconnect.baseMs");
  }
  return policy;
}

/** The largest delay for attempt `attempt` (0-based): `min(cap, base · 2^attempt)`. */
export function backoffCeiling(attempt: number, policy: ReconnectPolicy): number {
  // Cap the exponent so the power cannot overflow to Infinity after many failures.
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  return Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
}

/** Full-jitter delay for attempt `attempt` (0-based): uniform in `[0, ceiling)`. */
export function backoffDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, policy));
}
