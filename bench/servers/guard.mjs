// Preloaded (`--import`) into every server under test and into the load generator: the process
// kills itself when the benchmark runner that started it is gone, so a crashed or SIGKILLed
// runner never leaves a server listening. Plain JavaScript: it is inherited by worker threads
// (Parley's SQLite worker), which cannot load TypeScript preloads on Node 20.

const parent = Number(process.env.BENCH_PARENT_PID ?? process.ppid);

function parentAlive() {
  try {
    process.kill(parent, 0);
    return true;
  } catch {
    return false;
  }
}

setInterval(() => {
  if (!parentAlive()) process.kill(process.pid, "SIGKILL");
}, 500).unref();
