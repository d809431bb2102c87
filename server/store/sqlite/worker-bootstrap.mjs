// Starts the store worker thread on the module sqlite-store.ts names (workerData.moduleUrl).
// Compiled (dist/), that is JavaScript and loads as it is. From source it is worker.ts: Node 20
// ignores loader flags in a Worker's execArgv (nodejs/node#47747), so tsx is registered here.

import { workerData } from "node:worker_threads";

if (workerData.moduleUrl.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.moduleUrl);
