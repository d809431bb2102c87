// Loads uWebSockets.js and refuses the silent fallback: when the native binary does not load,
// the package quietly swaps in a `ws` shim whose topic publish does nothing — every broadcast
// would be lost. Better not to start at all.

import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";

export type { UWS };

const require = createRequire(import.meta.url);

/** Returns the native uWS module, or throws with a message an operator can act on. */
export function loadUws(): typeof UWS {
  const uws = require("uWebSockets.js") as typeof UWS & { us_socket_local_port?: unknown };
  if (typeof uws.us_socket_local_port !== "function") {
    throw new Error(
      `uWebSockets.js native binary did not load for ${process.platform}-${process.arch} ` +
        `(Node ABI ${process.versions.modules}); refusing to run on its ws fallback, which drops ` +
        "every topic publish. Use a supported Node version (20) and do not set UWS_USE_FALLBACK.",
    );
  }
  return uws;
}
