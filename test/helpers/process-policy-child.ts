// A process that installs the server's process policy and then misbehaves as asked (argv[2]):
// "rejection" leaves a promise rejected and unhandled, "exception" throws from a timer. It
// prints "still serving" if it is still running half a second later.

import { createLogger } from "../../server/platform/logger.ts";
import { installProcessPolicy } from "../../server/platform/process-policy.ts";

const logger = createLogger("info");
installProcessPolicy({
  logger,
  shutdown: async () => {
    process.stdout.write("graceful shutdown ran\n");
  },
  shutdownTimeoutMs: 5000,
});
if (process.argv[2] === "rejection") void Promise.reject(new Error("a background job forgot its catch"));
else
  setTimeout(() => {
    throw new Error("a handler threw");
  }, 10);
setTimeout(() => {
  process.stdout.write("still serving\n");
  process.exit(0);
}, 500);
