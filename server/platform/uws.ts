// Loads a native uWebSockets.js: the official build when it is installed and loads on this Node
// (it supports current LTS releases), else the Node 20 build this project installs
// (@trufflesuite/uws-js-unofficial, aliased as `uWebSockets.js`). That one quietly swaps in a
// `ws` shim whose topic publish does nothing when its binary does not load (any Node after 20):
// every broadcast would be lost, so a shim is refused and the server does not start.

import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";

export type { UWS };

/** Where the official build is looked for: `npm install --no-save uws-official@github:uNetworking/uWebSockets.js#v20.52.0`. */
export const OFFICIAL_UWS_MODULE = "uws-official";
/** The Node 20 build in package.json (@trufflesuite/uws-js-unofficial, native on Node 20 only). */
export const NODE20_UWS_MODULE = "uWebSockets.js";

/** The module loaded, and why the ones before it were passed over. */
export interface LoadedUws {
  uws: typeof UWS;
  module: string;
  passedOver: string[];
}

/** The modules to try, in order: PARLEY_UWS_MODULE alone when set (a module name or absolute path). */
export function uwsCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const chosen = env.PARLEY_UWS_MODULE?.trim();
  return chosen ? [chosen] : [OFFICIAL_UWS_MODULE, NODE20_UWS_MODULE];
}

function isNative(module: unknown): module is typeof UWS {
  // Both native builds export us_socket_local_port; the ws shim does not.
  return typeof (module as { us_socket_local_port?: unknown } | null)?.us_socket_local_port === "function";
}

function notInstalled(error: unknown, id: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === "MODULE_NOT_FOUND" && typeof message === "string" && message.includes(`'${id}'`);
}

/** Tries `candidates` in order with `load` (a require); the first native one wins. */
export function selectUws(candidates: string[], load: (id: string) => unknown): LoadedUws {
  const passedOver: string[] = [];
  for (const id of candidates) {
    let module: unknown;
    try {
      module = load(id);
    } catch (error) {
      passedOver.push(notInstalled(error, id) ? `${id}: not installed` : `${id}: ${(error as Error).message.split("\n")[0]}`);
      continue;
    }
    if (isNative(module)) return { uws: module, module: id, passedOver };
    passedOver.push(`${id}: its native binary did not load (only a ws fallback, which drops every topic publish)`);
  }
  throw new Error(
    `no native uWebSockets.js for ${process.platform}-${process.arch} on Node ${process.versions.node} ` +
      `(ABI ${process.versions.modules}): ${passedOver.join("; ")}. The bundled build runs on Node 20; ` +
      `on Node 22 or 24 install the official build: npm install --no-save ${OFFICIAL_UWS_MODULE}@github:uNetworking/uWebSockets.js#v20.52.0 ` +
      "(see README, Runtime). Do not set UWS_USE_FALLBACK.",
  );
}

/** Returns a native uWS module, or throws with a message an operator can act on. */
export function loadUws(): LoadedUws {
  return selectUws(uwsCandidates(), createRequire(import.meta.url));
}
