// The bus across nodes over Redis pub/sub: one channel per active conversation, subscribed while
// any local connection has it open (reference-counted, no pattern subscriptions), binary
// payloads. Redis delivers at most once; this bus only promises to say when something may have
// been missed (resync after every (re)subscribe, head messages after failed publishes).

import type { AccessChange } from "./access-events.ts";
import type { Logger } from "../platform/logger.ts";
import type { Bus, BusHandler, BusHealth, BusMessage } from "./bus.ts";
import { decodeBusMessage, encodeBusMessage } from "./bus-message.ts";
import { openRedisConnections, type RedisConnections } from "./redis-connections.ts";
import type { Clock } from "../platform/clock.ts";

/** Settings of the Redis bus. */
export interface RedisBusOptions {
  url: string;
  nodeId: string;
  /** Prefix of every channel, so deployments (or test runs) can share one Redis. */
  channelPrefix: string;
  sharded: boolean;
  logger: Logger;
  /** The wall clock each update message is stamped with (publishedAt: the receiving node's delivery lag runs from it). */
  now: Clock;
  /** Told of connection losses, failed publishes and undecodable messages (metrics). */
  onError?: (kind: "connection-lost" | "publish-failed" | "message-dropped") => void;
}

/** Updates coalesced into one message stay below this size (Redis handles far more; keep frames modest). */
const MAX_MESSAGE_BYTES = 512 * 1024;
/** Channels per SUBSCRIBE when re-subscribing after a reconnect. */
const SUBSCRIBE_CHUNK = 500;

interface OutgoingBatch {
  fromSeq: number;
  updates: Uint8Array[];
  bytes: number;
}

const noHandler: BusHandler = { message() {}, resync() {} };

/** {@link Bus} over Redis pub/sub. */
export class RedisBus implements Bus {
  readonly shared = true;
  readonly nodeId: string;
  private handler: BusHandler = noHandler;
  private readonly redis: RedisConnections;
  /** Local interest per conversation; the Redis subscription exists while the count is above 0. */
  private readonly wanted = new Map<string, number>();
  /** Committed updates waiting for this tick's publish, coalesced per conversation. */
  private readonly outgoing = new Map<string, OutgoingBatch>();
  private flushScheduled = false;
  /** Highest seq per conversation whose publish failed: announced by a head message on reconnect. */
  private readonly unsent = new Map<string, number>();
  private closed = false;
  private accessListener: (change: AccessChange) => void = () => {};
  private eventHeadListener: (org: string, cursor: number) => void = () => {};

  constructor(private readonly options: RedisBusOptions) {
    this.nodeId = options.nodeId;
    this.redis = openRedisConnections({ url: options.url, sharded: options.sharded, connectionName: `parley:${options.nodeId}` });
    const { publisher, subscriber } = this.redis;
    subscriber.on(this.redis.messageEvent, (_channel: Buffer, payload: Buffer) => this.received(payload));
    subscriber.on("ready", () => void this.resubscribeAll());
    publisher.on("ready", () => this.announceUnsent());
    for (const [role, connection] of [
      ["subscriber", subscriber],
      ["publisher", publisher],
    ] as const) {
      // Without an "error" listener ioredis stays quiet; log the state changes instead of every retry.
      connection.on("error", () => {});
      connection.on("close", () => {
        if (this.closed) return;
        options.onError?.("connection-lost");
        options.logger.warn({ bus: "redis", connection: role }, "bus connection lost; reconnecting");
      });
      connection.on("ready", () => options.logger.info({ bus: "redis", connection: role }, "bus connected"));
    }
  }

  setHandler(handler: BusHandler): void {
    this.handler = handler;
  }

  publishUpdate(conversation: string, seq: number, update: Uint8Array): void {
    if (this.closed) return;
    const batch = this.outgoing.get(conversation);
    if (batch && batch.fromSeq + batch.updates.length === seq && batch.bytes + update.length <= MAX_MESSAGE_BYTES) {
      batch.updates.push(update);
      batch.bytes += update.length;
    } else {
      if (batch) this.sendBatch(conversation, batch);
      this.outgoing.set(conversation, { fromSeq: seq, updates: [update], bytes: update.length });
    }
    // One group commit resumes all its writers in one run of microtasks: a microtask queued now
    // runs after them (one message per conversation) yet before their acks, which are queued
    // later, so no ack leaves this process before its PUBLISH was written to the socket.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  publishSnapshot(conversation: string, seq: number): void {
    if (this.closed) return;
    // After any updates queued before it, so receivers see the seqs in the order they were taken.
    this.flush();
    this.send(conversation, { kind: "snapshot", conversation, origin: this.nodeId, seq }).catch(() => {});
  }

  publishAccess(change: AccessChange): void {
    if (this.closed || !this.isUp(this.redis.publisher)) return; // re-validation covers a lost one
    const bytes = encodeBusMessage({ kind: "access", conversation: "", origin: this.nodeId, change });
    this.redis.publish(this.accessChannel, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).catch(() => {});
  }

  onAccess(listener: (change: AccessChange) => void): void {
    this.accessListener = listener;
  }

  publishEventHead(org: string, cursor: number): void {
    if (this.closed || !this.isUp(this.redis.publisher)) return; // followers' polling covers a lost one
    const bytes = encodeBusMessage({ kind: "event-head", conversation: "", origin: this.nodeId, org, cursor });
    this.redis.publish(this.accessChannel, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).catch(() => {});
  }

  onEventHead(listener: (org: string, cursor: number) => void): void {
    this.eventHeadListener = listener;
  }

  publishAwareness(conversation: string, session: string, update: Uint8Array, who: string): void {
    if (this.closed) return;
    const message: BusMessage = { kind: "awareness", conversation, origin: this.nodeId, session, update, who };
    // Ephemeral: a failed publish is dropped; the client's own awareness refresh renews it.
    this.send(conversation, message).catch(() => {});
  }

  subscribe(conversation: string): void {
    const count = this.wanted.get(conversation) ?? 0;
    this.wanted.set(conversation, count + 1);
    if (count > 0 || !this.isUp(this.redis.subscriber)) return; // not up: resubscribeAll() covers it on ready
    this.redis.subscribe([this.channelOf(conversation)]).then(
      () => {
        if (this.wanted.has(conversation)) this.handler.resync([conversation]);
      },
      () => {}, // the connection dropped meanwhile; resubscribeAll() runs on reconnect
    );
  }

  unsubscribe(conversation: string): void {
    const count = this.wanted.get(conversation);
    if (count === undefined) return;
    if (count > 1) {
      this.wanted.set(conversation, count - 1);
      return;
    }
    this.wanted.delete(conversation);
    if (this.isUp(this.redis.subscriber)) this.redis.unsubscribe([this.channelOf(conversation)]).catch(() => {});
  }

  health(): BusHealth {
    return { state: this.isUp(this.redis.publisher) && this.isUp(this.redis.subscriber) ? "ok" : "down" };
  }

  /** Conversations with a local subscription (for tests and metrics). */
  get subscriptions(): number {
    return this.wanted.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const { publisher, subscriber } = this.redis;
    subscriber.disconnect();
    // QUIT is answered after the publishes sent before it; do not wait long for a Redis that is gone.
    await Promise.race([publisher.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    publisher.disconnect();
  }

  /** The node-wide channel every node listens on: access changes and event stream heads. */
  private get accessChannel(): string {
    return `${this.options.channelPrefix}access`;
  }

  private channelOf(conversation: string): string {
    return `${this.options.channelPrefix}c:${conversation}`;
  }

  private isUp(connection: { status: string }): boolean {
    return connection.status === "ready";
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [conversation, batch] of this.outgoing) this.sendBatch(conversation, batch);
    this.outgoing.clear();
  }

  private sendBatch(conversation: string, batch: OutgoingBatch): void {
    const lastSeq = batch.fromSeq + batch.updates.length - 1;
    const message: BusMessage = { kind: "updates", conversation, origin: this.nodeId, fromSeq: batch.fromSeq, updates: batch.updates, publishedAt: this.options.now() };
    this.send(conversation, message).catch(() => {
      this.options.onError?.("publish-failed");
      this.markUnsent(conversation, lastSeq);
    });
  }

  private send(conversation: string, message: BusMessage): Promise<unknown> {
    if (!this.isUp(this.redis.publisher)) return Promise.reject(new Error("bus publisher is down"));
    const bytes = encodeBusMessage(message);
    return this.redis.publish(this.channelOf(conversation), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  private markUnsent(conversation: string, seq: number): void {
    if (this.closed) return;
    this.unsent.set(conversation, Math.max(seq, this.unsent.get(conversation) ?? 0));
  }

  /** After the publisher reconnects: tell the others how far each conversation got meanwhile. */
  private announceUnsent(): void {
    const unsent = [...this.unsent];
    this.unsent.clear();
    for (const [conversation, seq] of unsent) {
      this.send(conversation, { kind: "head", conversation, origin: this.nodeId, seq }).catch(() => this.markUnsent(conversation, seq));
    }
  }

  /** After the subscriber (re)connects: subscribe every wanted channel, then ask for a resync of them all. */
  private async resubscribeAll(): Promise<void> {
    const conversations = [...this.wanted.keys()];
    try {
      await this.redis.subscribe([this.accessChannel]);
      for (let i = 0; i < conversations.length; i += SUBSCRIBE_CHUNK) {
        await this.redis.subscribe(conversations.slice(i, i + SUBSCRIBE_CHUNK).map((c) => this.channelOf(c)));
      }
    } catch {
      return; // dropped again: the next "ready" starts over
    }
    const still = conversations.filter((c) => this.wanted.has(c));
    if (still.length > 0) this.handler.resync(still);
  }

  private received(payload: Buffer): void {
    let message: BusMessage;
    try {
      message = decodeBusMessage(payload);
    } catch (error) {
      this.options.onError?.("message-dropped");
      this.options.logger.warn({ err: error, bus: "redis" }, "bus message dropped");
      return;
    }
    if (message.origin === this.nodeId) return; // our own publish, already delivered locally
    if (message.kind === "access") this.accessListener(message.change);
    else if (message.kind === "event-head") this.eventHeadListener(message.org, message.cursor);
    else this.handler.message(message);
  }
}
