// Event subscriptions over the Parley socket: the `subscribe-events` control frame starts a
// follower of the socket's organisation from a cursor, `event` frames carry the events in order,
// `events-error` ends a subscription. The socket's send buffer is the flow control: above a
// threshold the follower pauses and polls until it drains, so a slow client never makes the
// server buffer more than one page per subscription.

import { ErrorCode, type SubscribeEventsMessage } from "../../protocol/index.ts";
import { describeError, ParleyError } from "../platform/errors.ts";
import type { Logger } from "../platform/logger.ts";
import type { ClientSession } from "./client-session.ts";
import { type EventAccess, type EventReader, readerOfPrincipal } from "../events/event-access.ts";
import { cursorError, EventFollower } from "../events/event-follower.ts";
import type { EventNotifier } from "../events/event-notifier.ts";
import type { EventStore, StoredEvent } from "../events/event-store.ts";

/** Settings of {@link SocketEventStreams}. */
export interface SocketEventStreamsOptions {
  /** Subscriptions one socket may hold at once. */
  maxPerSocket: number;
  /** Pause a subscription while the socket has more than this many bytes waiting to be sent. */
  maxBufferedBytes: number;
  /** How often running subscriptions' credentials are checked again. */
  recheckMs: number;
}

interface Subscription {
  id: string;
  reader: EventReader;
  follower: EventFollower | null;
  ended: boolean;
  pollTimer: NodeJS.Timeout | null;
}

const POLL_MS = 25;

/** Every socket's event subscriptions on this node. */
export class SocketEventStreams {
  private readonly bySession = new Map<ClientSession, Map<string, Subscription>>();
  private readonly recheck: NodeJS.Timeout;

  constructor(
    private readonly deps: { store: EventStore; notifier: EventNotifier; access: EventAccess; logger: Logger; options: SocketEventStreamsOptions },
  ) {
    this.recheck = setInterval(() => this.recheckAll(), deps.options.recheckMs);
    this.recheck.unref();
  }

  /** Handles `subscribe-events` (replacing a subscription of the same name). */
  subscribe(session: ClientSession, message: SubscribeEventsMessage): void {
    const principal = session.principal;
    if (!principal) return;
    let subscriptions = this.bySession.get(session);
    const existing = subscriptions?.get(message.subscription);
    if (existing) this.end(session, existing);
    subscriptions = this.bySession.get(session) ?? new Map<string, Subscription>();
    if (subscriptions.size >= this.deps.options.maxPerSocket) {
      session.sendControl({
        type: "events-error",
        subscription: message.subscription,
        code: ErrorCode.InvalidRequest,
        message: `at most ${this.deps.options.maxPerSocket} event subscriptions per connection`,
      });
      return;
    }
    this.bySession.set(session, subscriptions);
    const subscription: Subscription = { id: message.subscription, reader: readerOfPrincipal(principal), follower: null, ended: false, pollTimer: null };
    subscriptions.set(subscription.id, subscription);
    this.start(session, subscription, message).catch((error: unknown) => this.fail(session, subscription, error));
  }

  /** Handles `unsubscribe-events`. */
  unsubscribe(session: ClientSession, id: string): void {
    const subscription = this.bySession.get(session)?.get(id);
    if (subscription) this.end(session, subscription);
  }

  /** The socket closed. */
  closed(session: ClientSession): void {
    for (const subscription of [...(this.bySession.get(session)?.values() ?? [])]) this.end(session, subscription);
    this.bySession.delete(session);
  }

  /** Stops every subscription (shutdown; the sockets close right after). */
  close(): void {
    clearInterval(this.recheck);
    for (const session of [...this.bySession.keys()]) this.closed(session);
  }

  private async start(session: ClientSession, subscription: Subscription, message: SubscribeEventsMessage): Promise<void> {
    await this.deps.access.check(subscription.reader);
    const org = subscription.reader.orgId;
    let after = message.after;
    if (after === undefined) after = await this.deps.store.head(org);
    else {
      const read = await this.deps.store.read(org, after, 0, message.types);
      if (read.status !== "ok") throw cursorError(read, after);
    }
    if (subscription.ended) return;
    session.sendControl({ type: "events-subscribed", subscription: subscription.id, cursor: after });
    subscription.follower = new EventFollower(this.deps, org, after, message.types, {
      deliver: (events) => this.send(session, subscription, events),
      failed: (error) => this.fail(session, subscription, error),
    });
  }

  private send(session: ClientSession, subscription: Subscription, events: StoredEvent[]): boolean {
    if (subscription.ended || !session.socket) return false;
    for (const event of events) {
      session.sendControl({ type: "event", subscription: subscription.id, event: JSON.parse(event.json) });
    }
    if ((session.socket?.getBufferedAmount() ?? 0) <= this.deps.options.maxBufferedBytes) return true;
    this.pollDrain(session, subscription);
    return false;
  }

  private pollDrain(session: ClientSession, subscription: Subscription): void {
    subscription.pollTimer = setTimeout(() => {
      subscription.pollTimer = null;
      if (subscription.ended || !session.socket) return;
      if (session.socket.getBufferedAmount() > this.deps.options.maxBufferedBytes) this.pollDrain(session, subscription);
      else subscription.follower?.resume();
    }, POLL_MS);
  }

  private fail(session: ClientSession, subscription: Subscription, error: unknown): void {
    if (subscription.ended) return;
    const { code, message } = describeError(error);
    if (code === ErrorCode.Internal) this.deps.logger.error({ err: error, session: session.id }, "event subscription failed");
    this.end(session, subscription);
    session.sendControl({ type: "events-error", subscription: subscription.id, code, message });
  }

  private end(session: ClientSession, subscription: Subscription): void {
    subscription.ended = true;
    subscription.follower?.stop();
    if (subscription.pollTimer) clearTimeout(subscription.pollTimer);
    const subscriptions = this.bySession.get(session);
    if (subscriptions?.get(subscription.id) === subscription) subscriptions.delete(subscription.id);
  }

  private recheckAll(): void {
    for (const [session, subscriptions] of this.bySession) {
      for (const subscription of subscriptions.values()) {
        this.deps.access.check(subscription.reader).catch((error: unknown) => {
          this.fail(session, subscription, error instanceof ParleyError ? error : new ParleyError(ErrorCode.Forbidden, "access could not be checked"));
        });
      }
    }
  }
}
