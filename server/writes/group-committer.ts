// Group commit: appends that arrive while a commit is in flight (or within the commit window)
// ride together in the next transaction, so one fsync carries many updates. Callers get their
// own sequence number back only after the transaction is durable; results come back in arrival
// order, so fan-out after commit happens in sequence order per conversation. One bad request
// fails alone: a batch the store refused as a whole is retried in halves until the culprit is
// isolated, so nobody else's update is refused because it shared a transaction with it.

import type { CommitObserver } from "../platform/metrics.ts";
import type { AppendRequest, CommittedAppend, Store } from "../store/store.ts";
import { StoreError } from "../sql/store-error.ts";
import { monotonicClock } from "../platform/clock.ts";

/**
 * True when the store refused the batch in a rolled-back transaction because of what was in it
 * (so a smaller batch may commit). Not when the store is down or closed, or the outcome is
 * unknown: retrying then would fail again, or could record an update twice.
 */
function mayBeOneRequest(error: unknown): boolean {
  return error instanceof StoreError && (error.code === "invalid_request" || error.code === "internal" || error.code === "undecryptable");
}

/** Tuning for the committer. */
export interface GroupCommitterOptions {
  /** Most appends in one transaction. */
  maxBatch: number;
  /** Extra wait before committing, to gather more appends (0: commit on the next tick). */
  windowMs: number;
  /** Told every transaction's size and duration (metrics). */
  observer?: CommitObserver;
  /**
   * Awaited after each commit, before its appends are acknowledged: pins the heads it made
   * durable outside the log (store/acknowledged-heads.ts). Must not reject.
   */
  beforeAck?: (committed: readonly CommittedAppend[]) => Promise<void>;
}

interface Pending {
  request: AppendRequest;
  resolve: (committed: CommittedAppend) => void;
  reject: (error: unknown) => void;
}

/** A transaction's outcome, waiting to be told to its appends (in commit order, after the pin). */
type Outcome = { batch: Pending[]; results: CommittedAppend[] } | { batch: Pending[]; error: unknown };

/**
 * Batches appends into store transactions, one transaction in flight at a time. The pin of a
 * committed transaction's heads (beforeAck, a second durable write) overlaps the next
 * transaction: only the acknowledgements wait for it, and they go out in commit order. Pins
 * that pile up behind a slow one are written together, as one.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private inFlight: Promise<void> | null = null;
  /** Outcomes of committed (or failed) transactions not yet told to their appends. */
  private outcomes: Outcome[] = [];
  /** Pinning and telling the outcomes, while it runs. */
  private settling: Promise<void> | null = null;
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
    while (this.inFlight || this.queue.length > 0 || this.settling) {
      if (this.inFlight) await this.inFlight;
      else if (this.queue.length > 0) this.commitNext();
      else await this.settling;
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
    this.inFlight = this.commit(batch);
    void this.inFlight.finally(() => {
      this.inFlight = null;
      // Whatever arrived during the commit goes next, without waiting for the window again.
      if (this.queue.length > 0) this.commitNext();
    });
  }

  /** Commits a batch; when the store refuses it for its content, commits the halves on their own. */
  private async commit(batch: Pending[]): Promise<void> {
    let results: CommittedAppend[];
    const started = monotonicClock();
    try {
      results = await this.store.appendBatch(batch.map((p) => p.request));
      this.options.observer?.committed(batch.length, (monotonicClock() - started) / 1000);
    } catch (error) {
      this.options.observer?.failed(batch.length);
      if (batch.length === 1 || !mayBeOneRequest(error)) {
        this.settle({ batch, error });
        return;
      }
      // In arrival order, left half first: each conversation's appends keep their order.
      const middle = Math.ceil(batch.length / 2);
      await this.commit(batch.slice(0, middle));
      await this.commit(batch.slice(middle));
      return;
    }
    this.stats.appends += batch.length;
    this.stats.batches += 1;
    this.settle({ batch, results });
  }

  /** Tells an outcome once every earlier one was told (and the pins of all of them are written). */
  private settle(outcome: Outcome): void {
    this.outcomes.push(outcome);
    this.settling ??= this.settleAll().finally(() => {
      this.settling = null;
    });
  }

  private async settleAll(): Promise<void> {
    while (this.outcomes.length > 0) {
      const outcomes = this.outcomes;
      this.outcomes = [];
      const beforeAck = this.options.beforeAck;
      if (beforeAck) {
        const committed = outcomes.flatMap((o) => ("results" in o ? o.results : []));
        // Must not reject; if it did, the appends are durable in the log all the same.
        if (committed.length > 0) await beforeAck(committed).catch(() => undefined);
      }
      for (const outcome of outcomes) {
        if ("results" in outcome) for (let i = 0; i < outcome.batch.length; i++) outcome.batch[i].resolve(outcome.results[i]);
        else for (const pending of outcome.batch) pending.reject(outcome.error);
      }
    }
  }
}
