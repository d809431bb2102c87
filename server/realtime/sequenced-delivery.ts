// Gap-free, in-order delivery per conversation: committed updates (this node's and other nodes')
// reach the cache and local subscribers exactly in sequence order, once. A gap, or a notice that
// the bus may have missed something, is filled from the store before anything newer goes out.

import type { Logger } from "../platform/logger.ts";
import type { DeliveryObserver } from "../platform/metrics.ts";
import type { CommitOrigin } from "../writes/write-path.ts";
import { type Clock, monotonicClock } from "../platform/clock.ts";

/**
 * How a local commit arrived, kept so its fan-out can skip the sender and reuse its frame (and
 * the cache knows which index already holds it).
 */
export interface LocalOrigin {
  origin?: CommitOrigin;
  envelope?: Uint8Array;
  bareFrame?: Uint8Array;
  /** When it was committed (the monotonic clock): the local fan-out delay runs from here. */
  committedAt?: number;
  /** The document-rules index validation recorded it in. */
  recordedIn?: object;
}

/** Dependencies of {@link SequencedDelivery}. */
export interface SequencedDeliveryDeps {
  /** Committed update payloads with seq > afterSeq, in order (the store is the authority). */
  readSince(conversation: string, afterSeq: number): Promise<{ seq: number; payload: Uint8Array }[]>;
  /**
   * The seq up to which this node's clients already have (or will get, by syncing from the
   * cache) every update of the conversation: delivery continues right after it.
   */
  baseline(conversation: string): Promise<number>;
  /** Hands one update, in sequence order, to the cache and the local subscribers. */
  deliver(conversation: string, seq: number, update: Uint8Array, local: LocalOrigin | undefined): void;
  /** How long a gap may wait for the missing message on the bus before the store is read (0: read at once). */
  gapGraceMs: number;
  /** Told of delivery lag and of updates recovered from the store (metrics). */
  observer?: DeliveryObserver;
  /** Wait before retrying a failed store read. */
  retryMs: number;
  logger: Logger;
  /** The wall clock other nodes stamp their bus messages with: the cross-node delivery lag is measured on it. */
  now: Clock;
}

interface Item {
  /** Null for a snapshot entry's seq: stepped over, nothing delivered. */
  update: Uint8Array | null;
  local: LocalOrigin | undefined;
  /** When it was offered, if it had to wait behind a gap (the monotonic clock). */
  offeredAt?: number;
  /** For another node's update: when that node published it (ms since the epoch, its clock). */
  publishedAt?: number;
}

/** One tracked conversation. */
interface Stream {
  readonly conversation: string;
  /** Last seq delivered here; null until the baseline is known. */
  last: number | null;
  /** Highest seq known to be committed (from messages and head notices). */
  known: number;
  /** Updates that arrived ahead of a gap, by seq. */
  readonly pending: Map<number, Item>;
  reading: boolean;
  /** A store read was asked for (resync, head, or a gap outlasting the grace). */
  readWanted: boolean;
  timer: NodeJS.Timeout | null;
  closed: boolean;
}

/** Updates buffered behind one gap before the buffer is dropped (the store read brings them back). */
const MAX_PENDING = 10_000;

/** Orders committed updates per conversation and fills gaps from the store. */
export class SequencedDelivery {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly deps: SequencedDeliveryDeps) {}

  /** Starts tracking a conversation (its first local member joined). */
  open(conversation: string): void {
    if (this.streams.has(conversation)) return;
    const stream: Stream = {
      conversation,
      last: null,
      known: 0,
      pending: new Map(),
      reading: false,
      readWanted: false,
      timer: null,
      closed: false,
    };
    this.streams.set(conversation, stream);
    this.fetchBaseline(stream);
  }

  /** Stops tracking (its last local member left); what is buffered is dropped. */
  close(conversation: string): void {
    const stream = this.streams.get(conversation);
    if (!stream) return;
    stream.closed = true;
    if (stream.timer) clearTimeout(stream.timer);
    this.streams.delete(conversation);
  }

  /** True while the conversation is tracked. */
  tracks(conversation: string): boolean {
    return this.streams.has(conversation);
  }

  /** The last seq delivered to this node's clients (undefined when untracked or not yet known). */
  lastDelivered(conversation: string): number | undefined {
    return this.streams.get(conversation)?.last ?? undefined;
  }

  /**
   * Offers a committed update (local or remote). Delivered now if it is the next one, dropped if
   * already delivered, buffered behind a gap otherwise. False when the conversation is untracked.
   */
  offer(conversation: string, seq: number, update: Uint8Array, local?: LocalOrigin, publishedAt?: number): boolean {
    const stream = this.streams.get(conversation);
    if (!stream) return false;
    if (stream.last !== null && seq <= stream.last) return true;
    if (stream.last !== null && seq === stream.last + 1 && stream.pending.size === 0) {
      // The common case: next in line, nothing waiting.
      this.deliverOne(stream, seq, { update, local, publishedAt });
      stream.known = Math.max(stream.known, seq);
      if (stream.known <= seq && !stream.readWanted) this.cancelTimer(stream);
      return true;
    }
    if (stream.pending.size >= MAX_PENDING) stream.pending.clear();
    stream.pending.set(seq, { update, local, offeredAt: monotonicClock(), publishedAt });
    stream.known = Math.max(stream.known, seq);
    this.drain(stream);
    return true;
  }

  /** `seq` is a snapshot entry (compaction): step over it in order instead of waiting for an update. */
  skip(conversation: string, seq: number): void {
    const stream = this.streams.get(conversation);
    if (!stream || (stream.last !== null && seq <= stream.last)) return;
    stream.pending.set(seq, { update: null, local: undefined });
    stream.known = Math.max(stream.known, seq);
    this.drain(stream);
  }

  /** Another node says it committed up to `seq`: read at once if that is ahead of us. */
  head(conversation: string, seq: number): void {
    const stream = this.streams.get(conversation);
    if (!stream) return;
    stream.known = Math.max(stream.known, seq);
    if (stream.last === null || seq > stream.last) this.requestRead(stream);
  }

  /** The bus may have missed messages: read what is missing from the store now. */
  resync(conversation: string): void {
    const stream = this.streams.get(conversation);
    if (stream) this.requestRead(stream);
  }

  private fetchBaseline(stream: Stream): void {
    this.deps.baseline(stream.conversation).then(
      (seq) => {
        if (stream.closed || stream.last !== null) return;
        stream.last = seq;
        if (stream.readWanted) this.read(stream);
        else this.drain(stream);
      },
      (error: unknown) => {
        if (stream.closed) return;
        this.deps.logger.warn({ err: error, conversation: stream.conversation }, "delivery baseline failed; retrying");
        setTimeout(() => {
          if (!stream.closed) this.fetchBaseline(stream);
        }, this.deps.retryMs).unref();
      },
    );
  }

  /** Delivers what follows `last` without a gap; schedules a read if a gap remains. */
  private drain(stream: Stream): void {
    if (stream.last === null) return;
    for (;;) {
      const next = stream.last + 1;
      const item = stream.pending.get(next);
      if (!item) break;
      stream.pending.delete(next);
      this.deliverOne(stream, next, item);
    }
    for (const seq of stream.pending.keys()) if (seq <= stream.last) stream.pending.delete(seq);
    if (stream.known > stream.last) {
      // A gap: the missing message may just be late (two nodes' publishes race through Redis).
      this.schedule(stream, this.deps.gapGraceMs);
    } else if (!stream.readWanted) {
      this.cancelTimer(stream);
    }
  }

  private requestRead(stream: Stream): void {
    stream.readWanted = true;
    this.schedule(stream, 0);
  }

  private schedule(stream: Stream, delayMs: number): void {
    if (stream.reading || stream.last === null) {
      if (delayMs === 0) stream.readWanted = true;
      return; // the running read (or the baseline) picks it up
    }
    if (delayMs === 0) {
      this.cancelTimer(stream);
      void this.read(stream);
      return;
    }
    if (stream.timer) return; // keep the earlier deadline
    stream.timer = setTimeout(() => {
      stream.timer = null;
      void this.read(stream);
    }, delayMs);
  }

  private cancelTimer(stream: Stream): void {
    if (stream.timer) clearTimeout(stream.timer);
    stream.timer = null;
  }

  private async read(stream: Stream): Promise<void> {
    if (stream.closed || stream.reading || stream.last === null) return;
    this.cancelTimer(stream);
    stream.reading = true;
    stream.readWanted = false;
    let rows: { seq: number; payload: Uint8Array }[];
    try {
      rows = await this.deps.readSince(stream.conversation, stream.last);
    } catch (error) {
      stream.reading = false;
      if (stream.closed) return;
      this.deps.logger.warn({ err: error, conversation: stream.conversation }, "catch-up read failed; retrying");
      stream.readWanted = true;
      stream.timer = setTimeout(() => {
        stream.timer = null;
        void this.read(stream);
      }, this.deps.retryMs);
      return;
    }
    stream.reading = false;
    if (stream.closed) return;
    for (const row of rows) {
      // Delivered meanwhile from the bus, or already here: the store skips seqs of snapshot entries.
      if (row.seq <= stream.last) continue;
      const buffered = stream.pending.get(row.seq);
      stream.pending.delete(row.seq);
      if (!buffered) this.deps.observer?.recovered(1);
      // A buffered local commit keeps its origin (skipped by the fan-out) and its encoded frame.
      this.deliverOne(stream, row.seq, buffered?.update ? buffered : { update: row.payload, local: undefined });
    }
    // Everything known before this read began was committed before it, so the read covered it;
    // a "known" beyond what it returned can only be a snapshot entry's seq (not an update).
    if (stream.pending.size === 0 && !stream.readWanted) stream.known = Math.min(stream.known, stream.last);
    if (stream.readWanted) {
      void this.read(stream);
      return;
    }
    this.drain(stream);
  }

  private deliverOne(stream: Stream, seq: number, item: Item): void {
    stream.last = seq;
    if (!item.update) return;
    this.deps.observer?.delivered(item.offeredAt === undefined ? 0 : monotonicClock() - item.offeredAt);
    try {
      this.deps.deliver(stream.conversation, seq, item.update, item.local);
    } catch (error) {
      this.deps.logger.error({ err: error, conversation: stream.conversation, seq }, "delivery failed");
      return;
    }
    if (item.local?.committedAt !== undefined) this.deps.observer?.deliveredLocally(monotonicClock() - item.local.committedAt);
    if (item.publishedAt !== undefined) this.deps.observer?.deliveredFromRemote(this.deps.now() - item.publishedAt);
  }
}
