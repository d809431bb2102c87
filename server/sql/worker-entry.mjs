// Entry of a service worker thread: the service module named in workerData is loaded and every
// request from the main thread is run against it, in order. Compiled (dist/), that module is
// JavaScript; from source it is TypeScript, and as Node 20 ignores loader flags in a Worker's
// execArgv (nodejs/node#47747), tsx is registered here first. A method may return
// a promise (the directory runs async code over its synchronous database); its reply goes out
// once that settles. Requests carry { id, op, args }; replies { type: "reply", id, ok, value | error }.

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

port.on("message", (request) => {
  let result;
  try {
    if (!operations.has(request.op)) throw Object.assign(new Error(`unknown operation ${request.op}`), { code: "invalid_request" });
    result = service[request.op](...request.args);
  } catch (error) {
    reply(request, failed(request.id, error));
    return;
  }
  // A synchronous result (the log store's every operation) is answered at once, without a turn
  // through the microtask queue.
  if (typeof result?.then !== "function") reply(request, { type: "reply", id: request.id, ok: true, value: result });
  else result.then((value) => reply(request, { type: "reply", id: request.id, ok: true, value }), (error) => reply(request, failed(request.id, error)));
});
port.postMessage({ type: "ready" });

function failed(id, error) {
  return { type: "reply", id, ok: false, error: { name: error?.name, code: error?.code, message: error?.message ?? String(error) } };
}

function reply({ id, op }, message) {
  try {
    // A result that is an ArrayBuffer (the log store's packed batch results) is moved, not copied:
    // the service made it to be sent.
    port.postMessage(message, message.value instanceof ArrayBuffer ? [message.value] : []);
  } catch (error) {
    // A result that cannot cross the thread boundary fails its call, not the thread.
    port.postMessage({ type: "reply", id, ok: false, error: { code: "internal", message: `unserializable result: ${error.message}` } });
  }
  if (op === "close") port.close();
}
