// Following an organisation's events over the client's socket, as a typed async iterator. The
// feed remembers the cursor of the last event it received and subscribes again after every
// reconnect from there, dropping anything at or before it: the consumer sees every event once,
// in cursor order, across network failures and server restarts. A slow consumer does not make
// memory grow: past a high-water mark the feed unsubscribes and resubscribes once drained.

import {
  encodeControlFrame,
  type EventType,
  type EventMessage,
  type EventsErrorMessage,
  type EventsSubscribedMessage,
  isParleyEvent,
  type ParleyEvent,
} from "../protocol/index.ts";
import { ParleyError, type ParleyErrorInfo } from "./errors.ts";

/** Options for {@link ParleyClient.events}. */
export interface EventFeedOptions {
  /** Resume after this cursor (the last one you processed); omitted: events from now on. */
  after?: number;
  /** Only these event types (default: all). */
  types?: EventType[];
  /** Events buffered before the feed pauses the server (default 1000). */
  highWaterMark?: number;
}

/** An organisation's events as an async iterator; `for await (const event of feed)`. */
export interface EventFeed extends AsyncIterable<ParleyEvent> {
  /** Cursor of the last event the iterator returned (persist it; pass it as `after` to resume). */
  readonly cursor: number | undefined;
  /** Stops following; a pending `next()` resolves as done. */
  close(): void;
}

/** What a feed needs from the client. */
export interface EventFeedTransport {
  /** Sends a frame if the socket is up and authenticated; false otherwise. */
  send(frame: Uint8Array): boolean;
  /** The feed closed: forget it. */
  released(feed: EventFeedChannel): void;
}

type ServerEventMessage = EventsSubscribedMessage | EventMessage | EventsErrorMessage;

let nextFeedId = 1;

/** The client side of one event subscription. */
export class EventFeedChannel implements EventFeed {
  /** The subscription name on the socket. */
  readonly id = `feed-${nextFeedId++}`;
  private readonly queue: ParleyEvent[] = [];
  private readonly waiting: { resolve: (result: IteratorResult<ParleyEvent>) => void; reject: (error: Error) => void }[] = [];
  /** Last cursor received from the server (queued or returned): resubscriptions start after it. */
  private received: number | undefined;
  private returned: number | undefined;
  private subscribed = false;
  private pausedForBackpressure = false;
  private connectedNow = false;
  private error: ParleyError | null = null;
  private done = false;
  private readonly highWater: number;

  private readonly options: EventFeedOptions;
  private readonly transport: EventFeedTransport;

  constructor(options: EventFeedOptions, transport: EventFeedTransport) {
    this.options = options;
    this.transport = transport;
    if (options.after !== undefined && (!Number.isSafeInteger(options.after) || options.after < 0)) {
      throw new TypeError("options.after must be a non-negative integer cursor");
    }
    this.received = options.after;
    this.returned = options.after;
    this.highWater = Math.max(1, options.highWaterMark ?? 1000);
  }

  get cursor(): number | undefined {
    return this.returned;
  }

  /** The socket is authenticated (first time or after a reconnect): subscribe from the last cursor. */
  connected(): void {
    this.connectedNow = true;
    this.subscribed = false;
    this.subscribe();
  }

  /** The socket went away; `error` when it will not come back. */
  disconnected(error?: ParleyErrorInfo): void {
    this.connectedNow = false;
    this.subscribed = false;
    if (error) this.fail(new ParleyError(error.code, error.message));
  }

  /** A control message for this subscription. */
  receive(message: ServerEventMessage): void {
    if (this.done) return;
    switch (message.type) {
      case "events-subscribed":
        // Subscribed "from now": remember where now was, so a reconnect misses nothing after it.
        if (this.received === undefined) this.received = message.cursor;
        if (this.returned === undefined) this.returned = message.cursor;
        return;
      case "event": {
        const event = message.event;
        if (!isParleyEvent(event)) return;
        if (this.received !== undefined && event.cursor <= this.received) return; // already had it
        this.received = event.cursor;
        const waiter = this.waiting.shift();
        if (waiter) {
          this.returned = event.cursor;
          waiter.resolve({ value: event, done: false });
        } else {
          this.queue.push(event);
          if (this.queue.length >= this.highWater && this.subscribed) this.pause();
        }
        return;
      }
      case "events-error":
        this.subscribed = false;
        this.fail(new ParleyError(message.code, message.message));
        return;
    }
  }

  /** The client closed: end the iteration. */
  shutdown(): void {
    this.finish();
  }

  close(): void {
    if (this.done) return;
    if (this.subscribed) this.transport.send(encodeControlFrame({ type: "unsubscribe-events", subscription: this.id }));
    this.finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<ParleyEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<ParleyEvent>> {
    const event = this.queue.shift();
    if (event) {
      this.returned = event.cursor;
      if (this.pausedForBackpressure && this.queue.length <= this.highWater / 2) this.resume();
      return Promise.resolve({ value: event, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private subscribe(): void {
    if (this.done || this.error || this.subscribed || this.pausedForBackpressure || !this.connectedNow) return;
    const sent = this.transport.send(
      encodeControlFrame({ type: "subscribe-events", subscription: this.id, after: this.received, types: this.options.types }),
    );
    this.subscribed = sent;
  }

  private pause(): void {
    this.pausedForBackpressure = true;
    this.subscribed = false;
    this.transport.send(encodeControlFrame({ type: "unsubscribe-events", subscription: this.id }));
  }

  private resume(): void {
    this.pausedForBackpressure = false;
    this.subscribe();
  }

  private fail(error: ParleyError): void {
    if (this.done || this.error) return;
    this.error = error;
    this.transport.released(this);
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.transport.released(this);
    for (const waiter of this.waiting.splice(0)) waiter.resolve({ value: undefined, done: true });
  }
}
