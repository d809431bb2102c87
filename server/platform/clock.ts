// The server's clocks, the only place that reads the time (a lint rule keeps it so).
//
// Wall time (Clock): milliseconds since the epoch, as Date.now() gives them. One clock is made in
// app.ts (StartOptions.now) and one in the CLI wiring (cli/cli-context.ts) and passed down wherever
// a moment is stored, compared with stored moments, sent to another node, or decides an outcome
// (token and grant expiry, retention, log and event timestamps, webhook retry schedules), so tests
// can move time without waiting for it.
//
// Elapsed time (monotonicClock): for durations measured against the process's own timers
// (setTimeout, setInterval) and for rate budgets and latency metrics. It is not injected: those
// timers run on real time whatever a test's wall clock says, and a test that freezes the wall
// clock must not freeze rate budgets, stall detection or authentication timeouts with it. It
// never goes backwards when the system clock is set back, so a budget never shrinks on its own.

/** Milliseconds since the epoch. */
export type Clock = () => number;

/** The real clock. */
export const systemClock: Clock = () => Date.now();

/** Milliseconds on a clock that only goes forward (from an arbitrary origin): for durations, never for moments. */
export const monotonicClock: Clock = () => performance.now();
