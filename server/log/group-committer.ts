// Group commit: appends that arrive while a commit is in flight (or within the commit window)
// ride together in the next transaction, so one fsync carries many updates. Callers get their
// own sequence number back only after the transaction is durable; results come back in arrival
// order, so fan-out after commit happens in sequence order per conversation.

import type { AppendRequest, CommittedAppend, Store } from "../store/store.ts";

/** Tuning for the committer. */
export interface GroupCommitterOptions {
  /** Most appends in one transaction. */
  maxBatch: number;
  /** Extra wait before committing, to gather more appends (0: commit on the next tick). */
  windowMs: number;
}

interface Pending {
  request: AppendRequest;
  resolve: (committed: CommittedAppend) => void;
  reject: (error: unknown) => void;
}

/** Batches appends into store transactions, one transaction in flight at a time. */
export class GroupCommitter {
  private queue: Pending[] = [];
  private inFlight: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  /** Appends committed, and transactions used, since start (for metrics). */
  readonly stats = { appends: 0, batches: 0 };

  constructor(
    private readonly store: Store,
    private readonly options: GroupCommitterOptions,
  ) {}

  /** Queues an append; resolves once it is durable, with its sequence number. */
  append(request: AppendRequest): Promise<CommittedAppend> {
    if (this.closed) return Promise.reject(new Error("committer is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  /** Appends waiting for, or riding in, a transaction. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stops accepting appends and waits until every queued one is committed (or failed). */
  async flush(): Promise<void> {
    this.closed = true;
    while (this.inFlight || this.queue.length > 0) {
      if (this.inFlight) await this.inFlight;
      else this.commitNext();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.commitNext();
    };
    if (this.options.windowMs > 0) setTimeout(run, this.options.windowMs);
    else setImmediate(run);
  }

  private commitNext(): void {
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.length <= this.options.maxBatch ? this.queue : this.queue.slice(0, this.options.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    this.inFlight = this.store.appendBatch(batch.map((p) => p.request)).then(
      (results) => {
        this.stats.appends += batch.length;
        this.stats.batches += 1;
        for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
      },
      (error: unknown) => {
        for (const pending of batch) pending.reject(error);
      },
    );
    void this.inFlight.finally(() => {
      this.inFlight = null;
      // Whatever arrived during the commit goes next, without waiting for the window again.
      if (this.queue.length > 0) this.commitNext();
    });
  }
}
