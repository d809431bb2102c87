// Follows one organisation's stream from a cursor and hands events to a sink in cursor order,
// each once: catch-up and live delivery are the same loop (read a page after the cursor, send,
// repeat; sleep until the notifier says the stream grew). A sink that cannot take more pauses
// the loop instead of making anything buffer: the events stay in the store until it resumes.

import { ErrorCode, type EventType } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import type { EventNotifier } from "./event-notifier.ts";
import type { EventRead, EventStore, StoredEvent } from "./event-store.ts";

/** Events read per store call. */
const PAGE_SIZE = 200;

/** Where followed events go. */
export interface EventSink {
  /** Takes events in order; returns false when it cannot take more until {@link EventFollower.resume}. */
  deliver(events: StoredEvent[]): boolean;
  /** The follow ended because of an error (e.g. the store failed). */
  failed(error: unknown): void;
}

/** The error for a read that cannot continue from `after`. */
export function cursorError(read: Exclude<EventRead, { status: "ok" }>, after: number): ParleyError {
  if (read.status === "expired") {
    return new ParleyError(
      ErrorCode.EventCursorExpired,
      `events after cursor ${after} are older than the retention window (kept from ${read.prunedThrough + 1}): resynchronise through the REST API, then follow from now`,
    );
  }
  return new ParleyError(ErrorCode.EventCursorExpired, `cursor ${after} is ahead of this organisation's stream (latest ${read.head}): resynchronise, then follow from now`);
}

/** One follower of one organisation's stream. */
export class EventFollower {
  private cursor: number;
  private reading = false;
  private more = false;
  private paused = false;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly deps: { store: EventStore; notifier: EventNotifier },
    readonly org: string,
    after: number,
    private readonly types: readonly EventType[] | undefined,
    private readonly sink: EventSink,
  ) {
    this.cursor = after;
    this.unsubscribe = deps.notifier.on(org, () => this.pump());
    this.pump();
  }

  /** The last cursor handed to the sink (or the starting cursor). */
  get position(): number {
    return this.cursor;
  }

  /** The sink can take events again. */
  resume(): void {
    if (this.stopped || !this.paused) return;
    this.paused = false;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.reading || this.paused) {
      this.more = true;
      return;
    }
    this.reading = true;
    this.more = false;
    void this.readPage();
  }

  private async readPage(): Promise<void> {
    let read: EventRead;
    try {
      read = await this.deps.store.read(this.org, this.cursor, PAGE_SIZE, this.types);
    } catch (error) {
      this.reading = false;
      if (!this.stopped) this.fail(error);
      return;
    }
    this.reading = false;
    if (this.stopped) return;
    if (read.status !== "ok") {
      this.fail(cursorError(read, this.cursor));
      return;
    }
    const { events } = read;
    // With a type filter a page may skip ahead: the cursor still moves past what was filtered out.
    const reachedHead = events.length < PAGE_SIZE;
    if (events.length > 0) {
      this.cursor = events[events.length - 1].cursor;
      if (!this.sink.deliver(events)) this.paused = true;
    }
    if (this.stopped) return;
    if (!reachedHead || this.more) {
      this.more = true;
      if (!this.paused) this.pump();
    }
  }

  private fail(error: unknown): void {
    this.stop();
    this.sink.failed(error);
  }
}
