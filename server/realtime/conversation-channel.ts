// The per-conversation state shared by this node's connections: who is in it (for cleanup) and
// the awareness relay. Channels exist while at least one local connection has joined.

import { AwarenessClaims, type DocumentClientOwner } from "./awareness-claims.ts";
import { AwarenessRelay } from "./awareness-relay.ts";

/** A local connection in a channel, as far as the channel needs to know it. */
export interface ChannelMember {
  /** Closes the connection if its send buffer is over its limit; true when it did. */
  closeIfSlow(): boolean;
}

/** One conversation as seen by this node's connections. */
export class ConversationChannel {
  readonly awareness: AwarenessRelay;
  /** The local connections that joined (each once). */
  readonly members = new Set<ChannelMember>();

  constructor(
    readonly conversation: string,
    claims = new AwarenessClaims(),
    documentOwner?: DocumentClientOwner,
  ) {
    this.awareness = new AwarenessRelay(conversation, claims, documentOwner);
  }
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
  /** Awareness client ids' first claimants, kept while channels come and go. */
  private readonly awarenessClaims = new AwarenessClaims();

  /** `documentOwner`: who wrote the document under a client id (their awareness id too). */
  constructor(private readonly documentOwner?: DocumentClientOwner) {}

  /** Adds an observer of channels opening and closing (wired once by the composition root). */
  observe(observer: ChannelObserver): void {
    this.observers.push(observer);
  }

  /** The channel for a conversation, created on first use, with `member` in it. */
  acquire(conversation: string, member: ChannelMember): ConversationChannel {
    let channel = this.channels.get(conversation);
    if (!channel) {
      channel = new ConversationChannel(conversation, this.awarenessClaims, this.documentOwner);
      this.channels.set(conversation, channel);
      for (const observer of this.observers) observer.opened(conversation);
    }
    channel.members.add(member);
    return channel;
  }

  get(conversation: string): ConversationChannel | undefined {
    return this.channels.get(conversation);
  }

  /** Takes `member` out; the channel is dropped with its last member. */
  release(conversation: string, member: ChannelMember): void {
    const channel = this.channels.get(conversation);
    if (!channel) return;
    channel.members.delete(member);
    if (channel.members.size === 0) {
      this.channels.delete(conversation);
      for (const observer of this.observers) observer.closed(conversation);
    }
  }

  /** Closes the channel's connections whose send buffers are over their limit (after a publish). */
  closeSlowMembers(conversation: string): void {
    const channel = this.channels.get(conversation);
    if (channel) for (const member of channel.members) member.closeIfSlow();
  }

  get size(): number {
    return this.channels.size;
  }
}
