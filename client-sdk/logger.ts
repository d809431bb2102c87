// The logging seam: the SDK never writes to the console on its own. Pass `console` (or any object
// with these three methods) to see what it does; the default discards everything.

/** Where the SDK reports what it does; `console` fits. */
export interface ParleyLogger {
  debug(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** A logger that discards everything (the default). */
export const silentLogger: ParleyLogger = {
  debug() {},
  warn() {},
  error() {},
};
