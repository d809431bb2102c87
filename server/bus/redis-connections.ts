// The two Redis connections of a node's bus (one publisher, one subscriber) and the one place
// where plain Redis and Redis Cluster differ: PUBLISH/SUBSCRIBE versus sharded SPUBLISH/SSUBSCRIBE.
// TLS comes from the URL: rediss://[user:password@]host:port connects over TLS.

import { Cluster, Redis, type RedisOptions } from "ioredis";

/** How to reach Redis. */
export interface RedisConnectionOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://… for TLS. */
  url: string;
  /** Sharded pub/sub against a Redis Cluster (the URL names any one of its nodes). */
  sharded: boolean;
  /** Prefix of the connection names (CLIENT LIST shows `<name>:pub` and `<name>:sub`). */
  connectionName: string;
}

/** A publisher and a subscriber, with the commands that differ between plain Redis and Cluster. */
export interface RedisConnections {
  readonly publisher: Redis | Cluster;
  readonly subscriber: Redis | Cluster;
  /** The subscriber's event carrying (channel: Buffer, payload: Buffer). */
  readonly messageEvent: "messageBuffer" | "smessageBuffer";
  publish(channel: string, payload: Buffer): Promise<unknown>;
  /** Subscribes; resolves once Redis has confirmed every channel. */
  subscribe(channels: readonly string[]): Promise<unknown>;
  unsubscribe(channels: readonly string[]): Promise<unknown>;
}

/** Reconnect quickly at first, then every 2 s: a node without Redis is degraded, so keep trying. */
function retryDelay(attempt: number): number {
  return Math.min(50 * 2 ** (attempt - 1), 2000);
}

function commonOptions(name: string): RedisOptions {
  return {
    connectionName: name,
    retryStrategy: retryDelay,
    // A command while disconnected fails at once instead of queueing without bound: a lost
    // publish is repaired by a head message, a lost subscribe by the resubscribe on reconnect.
    enableOfflineQueue: false,
    // The bus re-subscribes itself on reconnect, so it knows when to read what it missed.
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
  };
}

/** Opens (without waiting for) the bus's connections. */
export function openRedisConnections(options: RedisConnectionOptions): RedisConnections {
  const parsed = new URL(options.url);
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error("the Redis URL must start with redis:// or rediss://");
  }
  if (!options.sharded) {
    // ioredis parses the URL itself, including rediss:// (TLS) and the database number.
    const publisher = new Redis(options.url, commonOptions(`${options.connectionName}:pub`));
    const subscriber = new Redis(options.url, commonOptions(`${options.connectionName}:sub`));
    return {
      publisher,
      subscriber,
      messageEvent: "messageBuffer",
      publish: (channel, payload) => publisher.publish(channel, payload),
      subscribe: (channels) => subscriber.subscribe(...channels),
      unsubscribe: (channels) => subscriber.unsubscribe(...channels),
    };
  }
  const node = { host: parsed.hostname, port: Number(parsed.port || 6379) };
  const redisOptions = (name: string): RedisOptions => ({
    ...commonOptions(name),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    tls: parsed.protocol === "rediss:" ? {} : undefined,
  });
  const clusterOptions = (name: string) => ({
    redisOptions: redisOptions(name),
    enableOfflineQueue: false,
    clusterRetryStrategy: retryDelay,
    clusterNodeRetryStrategy: retryDelay,
  });
  const publisher = new Cluster([node], clusterOptions(`${options.connectionName}:pub`));
  // One subscriber connection per shard (master) is inherent to sharded pub/sub.
  const subscriber = new Cluster([node], { ...clusterOptions(`${options.connectionName}:sub`), shardedSubscribers: true });
  return {
    publisher,
    subscriber,
    messageEvent: "smessageBuffer",
    publish: (channel, payload) => publisher.spublish(channel, payload),
    // Channels of one SSUBSCRIBE must share a hash slot: one command per channel.
    subscribe: (channels) => Promise.all(channels.map((channel) => subscriber.ssubscribe(channel))),
    unsubscribe: (channels) => Promise.all(channels.map((channel) => subscriber.sunsubscribe(channel))),
  };
}
