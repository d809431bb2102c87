// Picks the bus from the configuration: Redis when REDIS_URL is set (several nodes), the
// in-process bus otherwise (one node). The node id tags everything this node publishes.

import { randomBytes } from "node:crypto";
import type { Config } from "../platform/config.ts";
import type { Logger } from "../platform/logger.ts";
import type { Bus } from "./bus.ts";
import { LocalBus } from "./local-bus.ts";
import { RedisBus, type RedisBusOptions } from "./redis-bus.ts";
import type { Clock } from "../platform/clock.ts";

/** Opens the configured bus (Redis connects in the background; /readyz reports it). */
export function openBus(config: Config["bus"], logger: Logger, now: Clock, onError?: RedisBusOptions["onError"]): Bus {
  const nodeId = config.nodeId || randomBytes(6).toString("base64url");
  if (!config.redisUrl) return new LocalBus(nodeId);
  logger.info({ bus: "redis", nodeId, sharded: config.sharded, tls: config.redisUrl.startsWith("rediss:") }, "bus: redis");
  return new RedisBus({ url: config.redisUrl, nodeId, channelPrefix: config.channelPrefix, sharded: config.sharded, logger, now, onError });
}
