// Which local changes of one conversation are durable. Every write frame gets exactly one reply,
// in order, so in-flight writes form a FIFO; each records the local changes it carries. A change
// is unsaved until some acked write carried it. Plain bookkeeping: no sockets, no Y.Doc.

/** A write frame sent (or about to be sent): its Yjs update and the local changes it carries. */
export interface PendingWrite {
  /** Local change numbers (from {@link WriteTracker.recordLocalChange}) this write carries. */
  changes: readonly number[];
  /** The Yjs update bytes, kept so a write refused with a transient error can be re-sent. */
  update: Uint8Array;
}

/** Counts unsaved local changes and matches acks and write errors to the writes they answer. */
export class WriteTracker {
  private lastChange = 0;
  private readonly unsaved = new Set<number>();
  /** Unsaved changes whose write the server refused for good (e.g. ReadOnly). */
  private readonly refused = new Set<number>();
  private inflight: PendingWrite[] = [];

  /** Local changes not yet known to be durable. */
  get unsavedChanges(): number {
    return this.unsaved.size;
  }

  /** Writes sent on the current connection and not yet answered. */
  get inflightWrites(): number {
    return this.inflight.length;
  }

  /** True when some unsaved change was refused by the server and will not be saved as things stand. */
  get hasRefused(): boolean {
    return this.refused.size > 0;
  }

  /** Registers a new local change; returns its number. */
  recordLocalChange(): number {
    this.lastChange += 1;
    this.unsaved.add(this.lastChange);
    return this.lastChange;
  }

  /** Every currently unsaved change: what a sync step 2 answering the server's state vector carries. */
  unsavedList(): number[] {
    return [...this.unsaved];
  }

  /** Records that a write frame was sent; its reply is the next unanswered one. */
  sent(write: PendingWrite): void {
    this.inflight.push(write);
  }

  /** The oldest in-flight write was acked: its changes are durable. Returns it (undefined if none). */
  acked(): PendingWrite | undefined {
    const write = this.inflight.shift();
    if (write === undefined) return undefined;
    for (const change of write.changes) {
      this.unsaved.delete(change);
      this.refused.delete(change);
    }
    return write;
  }

  /** The oldest in-flight write was refused; `permanent` when re-sending it cannot succeed. */
  rejected(permanent: boolean): PendingWrite | undefined {
    const write = this.inflight.shift();
    if (write === undefined) return undefined;
    if (permanent) {
      for (const change of write.changes) if (this.unsaved.has(change)) this.refused.add(change);
    }
    return write;
  }

  /** The connection dropped: no reply will come for in-flight writes (their changes stay unsaved). */
  connectionLost(): void {
    this.inflight = [];
  }
}
