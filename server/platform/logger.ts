// The process logger: pino JSON lines, with every field that can carry a secret redacted, so a
// token pasted into a log by mistake never reaches disk.

import { type Logger, pino } from "pino";

export type { Logger };

/** Paths redacted wherever they appear in a log object. */
export const REDACTED_PATHS = [
  "token",
  "*.token",
  "accessToken",
  "refreshToken",
  "password",
  "*.password",
  "authorization",
  "headers.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  "url",
  "*.url",
];

/** Creates the root logger. `destination` lets tests capture output. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "parley" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
