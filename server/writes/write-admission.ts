// Explicit load shedding: whether a new write may enter the write path now. A saturated main
// thread does not see its backlog (frames wait in the sockets' receive buffers, unread), so the
// signal is the event loop's own utilisation over a short window (perf_hooks), plus the group
// committer's queue; while either is over its bound, new writes are refused with a code clients
// retry on (y-websocket: close 1013, the provider reconnects and resyncs; Parley: error 5006),
// instead of every frame waiting longer and longer. Reads (joins, syncs, deliveries) go on.

import { performance } from "node:perf_hooks";

/** When to refuse writes (config: PARLEY_SHED_*). */
export interface WriteAdmissionOptions {
  /** Event-loop utilisation (0-1) over one window at or above which writes are refused; null: never. */
  loopUtilisation: number | null;
  /** The window over which the utilisation is measured (ms); the state holds for the next one. */
  windowMs: number;
  /** Appends queued in the group committer above which writes are refused; null: no bound. */
  maxQueuedAppends: number | null;
}

/** Why writes are being refused, or null while they are admitted. */
export type Overload = "event-loop" | "commit-queue" | null;

/** Share of writers added to (or let back from) the shed set per saturated (or calm) window. */
const SHED_STEP_UP = 0.2;
const SHED_STEP_DOWN = 0.1;

/**
 * Decides, per write and cheaply, whether the node is too busy to take it. A saturated loop sheds
 * a growing share of the writers (by a rank fixed per connection: the same writers stay refused,
 * so a y-websocket writer is closed once rather than every writer losing some writes), a fifth
 * more for every window that was still saturated and a tenth fewer for every calm one; a commit
 * queue over its bound refuses every write until it drains.
 */
export class WriteAdmission {
  private last = performance.eventLoopUtilization();
  /** Share of writer ranks (0-1) refused now because of the event loop. */
  private share = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: WriteAdmissionOptions,
    /** Appends waiting in (or riding in) the group committer now. */
    private readonly queuedAppends: () => number,
    /** Told when the share of writers refused changes (logs). */
    private readonly onChange?: (share: number, utilisation: number) => void,
  ) {}

  /** Starts sampling the event loop (nothing to do when that check is off). */
  start(): void {
    if (this.options.loopUtilisation === null || this.timer) return;
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.sample(), this.options.windowMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Why a write from a writer of `rank` (0-1, fixed per connection) arriving now should be refused; null when admitted. */
  overload(rank: number): Overload {
    if (rank < this.share) return "event-loop";
    const max = this.options.maxQueuedAppends;
    if (max !== null && this.queuedAppends() > max) return "commit-queue";
    return null;
  }

  /** Measures the window just ended. A saturated loop runs this late, but it runs: timers are never starved for ever. */
  private sample(): void {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.last);
    this.last = now;
    const threshold = this.options.loopUtilisation;
    if (threshold === null) return;
    const before = this.share;
    this.share = utilization >= threshold ? Math.min(1, this.share + SHED_STEP_UP) : Math.max(0, this.share - SHED_STEP_DOWN);
    if (this.share !== before) this.onChange?.(this.share, utilization);
  }
}
