// Where committed updates go after the write path, on one node or many: the bus (other nodes)
// and, in sequence order, this node's cache and subscribers. Updates from other nodes arrive here
// from the bus and join the same ordered stream; a conversation is followed (bus subscription,
// ordered delivery) while it has at least one local member.

import type { Bus, BusHandler, BusMessage } from "../bus/bus.ts";
import type { Logger } from "../platform/logger.ts";
import type { DeliveryObserver } from "../platform/metrics.ts";
import type { FanOut, LocalCommit } from "../writes/write-path.ts";
import type { Store } from "../store/store.ts";
import type { ClusterBroadcaster } from "./cluster-broadcaster.ts";
import type { ChannelObserver } from "./conversation-channel.ts";
import type { DocumentCache } from "../documents/document-cache.ts";
import { type LocalOrigin, SequencedDelivery } from "./sequenced-delivery.ts";
import { type Clock, monotonicClock } from "../platform/clock.ts";

/** Dependencies of {@link CommitFanOut}, wired by the composition root. */
export interface CommitFanOutDeps {
  bus: Bus;
  store: Pick<Store, "readUpdatesSince">;
  cache: DocumentCache;
  /** Publishes to this node's subscribers (and awareness to the bus). */
  broadcaster: ClusterBroadcaster;
  logger: Logger;
  /** How long a sequence gap may wait for a late bus message before the store is read. */
  gapGraceMs: number;
  /** Told of delivery lag and of updates recovered from the store (metrics). */
  observer?: DeliveryObserver;
  /** The wall clock the bus stamps messages with (cross-node delivery lag). */
  now: Clock;
}

/** The fan-out of committed updates, local delivery included: bus publish first, then this node's cache and subscribers in sequence order (other nodes' commits join the same stream). */
export class CommitFanOut implements FanOut, BusHandler, ChannelObserver {
  private readonly sequenced: SequencedDelivery;

  constructor(private readonly deps: CommitFanOutDeps) {
    this.sequenced = new SequencedDelivery({
      readSince: (conversation, afterSeq) => deps.store.readUpdatesSince(conversation, afterSeq),
      // The cache's head is the right starting point: joining clients sync from the cache, and
      // only this class feeds it, in order, so everything up to its head is in it.
      baseline: async (conversation) => (await deps.cache.get(conversation)).headSeq,
      deliver: (conversation, seq, update, local) => this.deliverLocally(conversation, seq, update, local),
      gapGraceMs: deps.bus.shared ? deps.gapGraceMs : 0, // alone, a gap is a snapshot's seq: nothing to wait for
      retryMs: 1000,
      logger: deps.logger,
      observer: deps.observer,
      now: deps.now,
    });
    deps.bus.setHandler(this);
  }

  /**
   * A commit of this node: published to the other nodes first, then delivered here in order.
   * Strict order holds here too: a local commit waits behind an earlier seq another node
   * committed until that one arrives (bus, or store after the grace period). The sender's own
   * ack does not wait; it goes out as soon as the commit is durable.
   */
  committedUpdate(conversation: string, update: Uint8Array, seq: number, local: LocalCommit = {}): void {
    // Spelled out rather than spread: one object of one shape per update.
    const origin: LocalOrigin = { origin: local.origin, envelope: local.envelope, bareFrame: local.bareFrame, recordedIn: local.recordedIn, committedAt: monotonicClock() };
    this.deps.bus.publishUpdate(conversation, seq, update);
    if (!this.sequenced.offer(conversation, seq, update, origin)) this.untracked(conversation, seq, update, local);
  }

  /**
   * This node compacted a conversation: its snapshot entry took `seq`. Without this notice every
   * node (this one included) would take the missing seq for a lost update and read the store.
   */
  compacted(conversation: string, seq: number): void {
    this.deps.bus.publishSnapshot(conversation, seq);
    this.sequenced.skip(conversation, seq);
  }

  message(message: BusMessage): void {
    switch (message.kind) {
      case "updates":
        for (let i = 0; i < message.updates.length; i++) {
          this.sequenced.offer(message.conversation, message.fromSeq + i, message.updates[i], undefined, message.publishedAt);
        }
        return;
      case "head":
        this.sequenced.head(message.conversation, message.seq);
        return;
      case "snapshot":
        this.sequenced.skip(message.conversation, message.seq);
        return;
      case "awareness":
        // Ephemeral, checked by the origin node and again against this node's claims (which
        // record the origin's), then relayed to local subscribers only. A joiner here learns of
        // remote presence on the next awareness refresh of those clients.
        if (this.sequenced.tracks(message.conversation)) {
          this.deps.broadcaster.publishRemoteAwareness(message.conversation, message.update, message.who);
        }
        return;
    }
  }

  resync(conversations: readonly string[]): void {
    for (const conversation of conversations) this.sequenced.resync(conversation);
  }

  opened(conversation: string): void {
    this.sequenced.open(conversation);
    this.deps.bus.subscribe(conversation);
  }

  closed(conversation: string): void {
    this.deps.bus.unsubscribe(conversation);
    this.sequenced.close(conversation);
  }

  /** The last seq delivered to this node's clients (tests, metrics). */
  lastDelivered(conversation: string): number | undefined {
    return this.sequenced.lastDelivered(conversation);
  }

  private deliverLocally(conversation: string, seq: number, update: Uint8Array, local: LocalOrigin | undefined): void {
    this.deps.cache.committed(conversation, update, seq, local?.recordedIn);
    this.deps.broadcaster.committedUpdate(conversation, update, seq, local);
  }

  /**
   * A commit to a conversation nobody here has open (e.g. an HTTP write). A cached state stays
   * only if this commit directly follows it; otherwise other nodes wrote in between and the
   * stale state is dropped, to be reloaded from the store by the next join.
   */
  private untracked(conversation: string, seq: number, update: Uint8Array, local: LocalCommit): void {
    const doc = this.deps.cache.peek(conversation);
    if (doc && doc.headSeq === seq - 1) this.deps.cache.committed(conversation, update, seq, local.recordedIn);
    else if (doc) this.deps.cache.evict(conversation);
    this.deps.broadcaster.committedUpdate(conversation, update, seq, local);
  }
}
