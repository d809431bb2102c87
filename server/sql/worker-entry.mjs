// Entry of a service worker thread: the service module named in workerData is loaded and every
// request from the main thread is run against it, in order. Compiled (dist/), that module is
// JavaScript; from source it is TypeScript, and as Node 20 ignores loader flags in a Worker's
// execArgv (nodejs/node#47747), tsx is registered here first. A method may return
// a promise (the directory runs async code over its synchronous database); its reply goes out
// once that settles.

import { parentPort, workerData } from "node:worker_threads";

const { moduleUrl, options } = workerData;
if (moduleUrl.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
const port = parentPort;
let service;
try {
  const module = await import(moduleUrl);
  service = module.openService(options);
} catch (error) {
  port.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) });
  throw error;
}
const operations = new Set(service.operations);

port.on("message", async ({ id, op, args }) => {
  let reply;
  try {
    if (!operations.has(op)) throw Object.assign(new Error(`unknown operation ${op}`), { code: "invalid_request" });
    reply = { type: "reply", id, ok: true, value: await service[op](...args) };
  } catch (error) {
    reply = { type: "reply", id, ok: false, error: { name: error?.name, code: error?.code, message: error?.message ?? String(error) } };
  }
  try {
    port.postMessage(reply);
  } catch (error) {
    port.postMessage({ type: "reply", id, ok: false, error: { code: "internal", message: `unserializable result: ${error.message}` } });
  }
  if (op === "close") port.close();
});
port.postMessage({ type: "ready" });
