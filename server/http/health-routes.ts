// Liveness and readiness: /healthz answers while the process runs; /readyz answers 200 only when
// the store can commit and the node is not shutting down, so a load balancer stops routing to it.
// A bus that is down is reported but keeps the node ready: it still serves its own clients.

import { ErrorCode } from "../../protocol/index.ts";
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import type { UWS } from "../uws.ts";
import { sendError, sendJson } from "./respond.ts";

/** Registers /healthz, /readyz and the JSON 404 for everything else. */
export function registerHealthRoutes(app: UWS.TemplatedApp, deps: { store: Store; bus?: Pick<Bus, "health">; isShuttingDown: () => boolean }): void {
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
        const bus = deps.bus?.health().state ?? "local";
        sendJson(res, ready ? "200 OK" : "503 Service Unavailable", {
          status: ready ? (bus === "down" ? "degraded" : "ready") : "not-ready",
          store: storeOk ? "ok" : "down",
          bus,
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
