// The server's clock: milliseconds since the epoch, as Date.now() gives them. Passed in (from
// app.ts's StartOptions.now) wherever time decides an outcome (expiry, retention, event
// timestamps), so tests can move time without waiting for it.

/** Milliseconds since the epoch. */
export type Clock = () => number;

/** The real clock. */
export const systemClock: Clock = () => Date.now();
