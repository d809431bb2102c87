// The per-conversation state shared by this node's connections: who is in it (for cleanup) and
// the awareness relay. Channels exist while at least one local connection has joined.

import { AwarenessRelay } from "./awareness-relay.ts";

/** One conversation as seen by this node's connections. */
export class ConversationChannel {
  readonly awareness = new AwarenessRelay();
  members = 0;

  constructor(readonly conversation: string) {}
}

/** Told when a conversation gains its first local member and loses its last (bus subscription, ordered delivery). */
export interface ChannelObserver {
  opened(conversation: string): void;
  closed(conversation: string): void;
}

/** Reference-counted channels by conversation id. */
export class ChannelRegistry {
  private readonly channels = new Map<string, ConversationChannel>();
  private readonly observers: ChannelObserver[] = [];

  /** Adds an observer of channels opening and closing (wired once by the composition root). */
  observe(observer: ChannelObserver): void {
    this.observers.push(observer);
  }

  /** The channel for a conversation, created on first use; counts one more member. */
  acquire(conversation: string): ConversationChannel {
    let channel = this.channels.get(conversation);
    if (!channel) {
      channel = new ConversationChannel(conversation);
      this.channels.set(conversation, channel);
      for (const observer of this.observers) observer.opened(conversation);
    }
    channel.members++;
    return channel;
  }

  get(conversation: string): ConversationChannel | undefined {
    return this.channels.get(conversation);
  }

  /** Counts one member fewer; the channel is dropped with its last member. */
  release(conversation: string): void {
    const channel = this.channels.get(conversation);
    if (!channel) return;
    if (--channel.members <= 0) {
      this.channels.delete(conversation);
      for (const observer of this.observers) observer.closed(conversation);
    }
  }

  get size(): number {
    return this.channels.size;
  }
}
