// Where every rate limiter of a node counts: in Redis when REDIS_URL is set, so a limit holds
// across all nodes (an attacker gains nothing by spreading requests over them), in memory
// otherwise. rate-limiter-flexible does the counting; this module only picks its store.

import { Redis } from "ioredis";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";

/** One limit: `points` per `durationSeconds`; past it the key is refused for `blockSeconds` (default: the rest of the window). */
export interface LimitSpec {
  points: number;
  durationSeconds: number;
  blockSeconds?: number;
}

/** Creates named limiters on one store. */
export interface LimiterBackend {
  /** True when counts are shared between nodes (Redis). */
  readonly shared: boolean;
  /** A limiter whose keys live under `name` (names must differ between limiters). */
  create(name: string, spec: LimitSpec): RateLimiterAbstract;
  /**
   * Resolves once the shared store answers, or after `timeoutMs` (false): until then limits count
   * per node. The composition root waits for it before listening.
   */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** How to reach the shared store, if any. */
export interface LimiterBackendOptions {
  /** redis:// or rediss:// URL; null: in memory, per node. */
  redisUrl: string | null;
  /** Prefix of every Redis key (the deployment's prefix), so deployments sharing a Redis stay apart. */
  keyPrefix: string;
}

/** Opens the store limiters count in. */
export function openLimiterBackend(options: LimiterBackendOptions): LimiterBackend {
  if (!options.redisUrl) {
    return {
      shared: false,
      create: (name, spec) =>
        new RateLimiterMemory({ keyPrefix: name, points: spec.points, duration: spec.durationSeconds, blockDuration: spec.blockSeconds ?? 0 }),
      ready: async () => true,
      close: async () => {},
    };
  }
  // Commands fail at once while Redis is away (no unbounded queue); the limiter then counts in
  // this node's memory (the insurance limiter) until Redis is back: degraded, never unlimited.
  const client = new Redis(options.redisUrl, {
    connectionName: `${options.keyPrefix}limits`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** (attempt - 1), 2000),
  });
  client.on("error", () => {
    // Reconnects on its own; a refused command falls back to the insurance limiter.
  });
  return {
    shared: true,
    create: (name, spec) =>
      new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${options.keyPrefix}rl:${name}`,
        points: spec.points,
        duration: spec.durationSeconds,
        blockDuration: spec.blockSeconds ?? 0,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({
          keyPrefix: name,
          points: spec.points,
          duration: spec.durationSeconds,
          blockDuration: spec.blockSeconds ?? 0,
        }),
      }),
    ready: (timeoutMs) =>
      client.status === "ready"
        ? Promise.resolve(true)
        : new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
              client.off("ready", onReady);
              resolve(false);
            }, timeoutMs);
            const onReady = () => {
              clearTimeout(timer);
              resolve(true);
            };
            client.once("ready", onReady);
          }),
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
