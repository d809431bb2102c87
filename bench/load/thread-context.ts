// Where one generator thread sits among the generator's threads, and the memory they share: handed
// to every thread with each plan.

/** A thread's index among `count`, plus the send-time table all threads share. */
export interface ThreadContext {
  index: number;
  count: number;
  /** Actual send time of every update, µs after `epoch` (0 = not sent), shared by all threads. */
  sendTimes: Int32Array;
  /** The generator's clock (ms) at which `sendTimes` counts from. */
  epoch: number;
}
