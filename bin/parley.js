#!/usr/bin/env node
// Entry point of the `parley` command. Runs the compiled server (dist/, made by `npm run build`,
// which `npm start` runs first). PARLEY_RUN_SOURCE=1 runs the TypeScript sources through tsx
// instead (a development dependency): the test suite does, so it always tests the code as it is.

import { existsSync } from "node:fs";

// argon2 hashes run on libuv's thread pool (4 threads by default) next to file I/O; give it room
// for the configured concurrent hashes. Must be set before the pool is first used.
process.env.UV_THREADPOOL_SIZE ??= "8";

if (process.env.PARLEY_RUN_SOURCE === "1") {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../server/cli.ts");
} else {
  const compiled = new URL("../dist/server/cli.js", import.meta.url);
  if (!existsSync(compiled)) {
    process.stderr.write("parley: not built yet: run `npm run build` (npm start does it), or set PARLEY_RUN_SOURCE=1 to run the sources\n");
    process.exit(2);
  }
  await import(compiled.href);
}
