// Liveness and readiness: /healthz answers while the process runs; /readyz answers 200 only when
// the store can commit and the node is not shutting down, so a load balancer stops routing to it.

import { ErrorCode } from "../../protocol/index.ts";
import type { Store } from "../store/store.ts";
import type { UWS } from "../uws.ts";
import { sendError, sendJson } from "./respond.ts";

/** Registers /healthz, /readyz and the JSON 404 for everything else. */
export function registerHealthRoutes(app: UWS.TemplatedApp, deps: { store: Store; isShuttingDown: () => boolean }): void {
  app.get("/healthz", (res) => sendJson(res, "200 OK", { status: "ok" }));
  app.get("/readyz", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    deps.store.ping().then(
      (storeOk) => {
        if (aborted) return;
        const ready = storeOk && !deps.isShuttingDown();
        sendJson(res, ready ? "200 OK" : "503 Service Unavailable", {
          status: ready ? "ready" : "not-ready",
          store: storeOk ? "ok" : "down",
          shuttingDown: deps.isShuttingDown(),
        });
      },
      () => {
        if (!aborted) sendJson(res, "503 Service Unavailable", { status: "not-ready", store: "down" });
      },
    );
  });
  app.any("/*", (res) => sendError(res, "404 Not Found", ErrorCode.NotFound, "not found"));
}
