// Preloaded (`--import`) into every server under test and into the load generator: the process
// kills itself when the benchmark runner that started it is gone, so a crashed or SIGKILLed
// runner never leaves a server listening; and with --expose-gc, SIGUSR2 runs a full GC so memory
// is measured without the garbage of whatever ran before. Plain JavaScript: it is inherited by
// worker threads (Parley's SQLite worker), which cannot load TypeScript preloads on Node 20.

import { isMainThread } from "node:worker_threads";

const parent = Number(process.env.BENCH_PARENT_PID ?? process.ppid);

function parentAlive() {
  try {
    process.kill(parent, 0);
    return true;
  } catch {
    return false;
  }
}

if (isMainThread && typeof globalThis.gc === "function") {
  const gc = globalThis.gc;
  // "last-resort" also compacts and releases freed pages, so RSS reflects live memory.
  process.on("SIGUSR2", () => gc({ type: "major", execution: "sync", flavor: "last-resort" }));
}

setInterval(() => {
  if (!parentAlive()) process.kill(process.pid, "SIGKILL");
}, 500).unref();
