// What the process does with an error nothing else caught. A rejected promise nobody handled is a
// bug in one request or one background job: it is logged with its context and the server keeps
// serving everyone else. An uncaught exception may have left shared state half-changed: it is
// logged as fatal, then the server shuts down gracefully (sockets get 1012 and reconnect to a
// restarted or another node) and the process exits 1 for its supervisor to restart it.

import type { Logger } from "pino";

export interface ProcessPolicyOptions {
  logger: Logger;
  /** Graceful shutdown after an uncaught exception; the process exits 1 once it settles (or times out). */
  shutdown: () => Promise<void>;
  /** How long the shutdown may take before the process exits anyway. */
  shutdownTimeoutMs: number;
}

/** Installs the handlers on `process`; returns a function that removes them. */
export function installProcessPolicy(options: ProcessPolicyOptions): () => void {
  const { logger } = options;
  let unhandled = 0;
  let exiting = false;
  const onRejection = (reason: unknown) => {
    unhandled += 1;
    logger.error({ err: reason, unhandledRejections: unhandled }, "unhandled promise rejection (a bug); still serving");
  };
  const onException = (error: Error, origin: string) => {
    logger.fatal({ err: error, origin }, "uncaught exception (a bug); shutting down so a supervisor restarts a clean process");
    if (exiting) return;
    exiting = true;
    process.exitCode = 1;
    const deadline = setTimeout(() => process.exit(1), options.shutdownTimeoutMs);
    deadline.unref();
    options.shutdown().then(
      () => process.exit(1),
      (shutdownError: unknown) => {
        logger.error({ err: shutdownError }, "shutdown after an uncaught exception failed");
        process.exit(1);
      },
    );
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return () => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  };
}
