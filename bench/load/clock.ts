// One monotonic millisecond clock shared by every thread of the generator: performance.now() is
// per-thread (each worker has its own time origin), process.hrtime is per-process, so each thread
// offsets its performance.now() onto hrtime once and then reads the cheap one.

const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Milliseconds on the process-wide monotonic clock (comparable across worker threads). */
export function now(): number {
  return performance.now() + offset;
}
