// Liveness and readiness. /healthz answers 200 while the process can recover by itself and 503,
// naming the part, once a worker thread (SQLite store, directory, audit log, partner storage)
// has died: a dead worker is never restarted in the process, so only a restart brings the node
// back, and liveness is what tells a supervisor to restart. A Postgres or Redis outage is no such
// death (pools reconnect): it leaves liveness alone. /readyz answers 200 only when the store can
// commit, the directory answers, no worker thread is dead and the node is not shutting down, so a
// load balancer stops routing to it. A dead audit log or partner storage worker counts: sign-ins,
// audited changes and partner events all need it, so a node without one fails most of what it is
// asked while the store and directory still answer. A bus that is down is reported but keeps the node ready: it still serves its
// own clients.

import { ErrorCode } from "../../protocol/index.ts";
import type { Bus } from "../bus/bus.ts";
import type { DirectoryHandle } from "../directory/directory.ts";
import type { Store } from "../store/store.ts";
import type { UWS } from "../platform/uws.ts";
import type { WorkerThread } from "../sql/worker-service.ts";
import { sendError, sendJson } from "./respond.ts";

/** The directory counts as down when a read has not come back within this time. */
const DIRECTORY_PROBE_MS = 2000;

/**
 * True when the directory answers a read. Every sign-in, token check and access decision goes
 * through it, so a node whose directory (worker thread, or Postgres pool) does not answer cannot
 * serve. The read is of a user that cannot exist: it touches the database and changes nothing.
 */
export async function directoryAnswers(handle: Pick<DirectoryHandle, "alive" | "directory">, timeoutMs = DIRECTORY_PROBE_MS): Promise<boolean> {
  if (!handle.alive()) return false;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const answered = handle.directory.getUser("readiness-probe").then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The dead worker threads among `workers`, each with why it died. */
export function deadWorkers(workers: readonly WorkerThread[]): { name: string; cause: string }[] {
  return workers.flatMap((worker) => (worker.deathCause === null ? [] : [{ name: worker.name, cause: worker.deathCause }]));
}

/** Registers /healthz, /readyz and the JSON 404 for everything else. */
export function registerHealthRoutes(
  app: UWS.TemplatedApp,
  deps: {
    store: Store;
    directory?: Pick<DirectoryHandle, "alive" | "directory">;
    bus?: Pick<Bus, "health">;
    isShuttingDown: () => boolean;
    /** The process's worker threads: one that died fails liveness and readiness. */
    workers?: readonly WorkerThread[];
    /** The latest scheduled backup and drill (detail only: a failed backup does not make a node unready). */
    backups?: () => unknown;
  },
): void {
  app.get("/healthz", (res) => {
    const dead = deadWorkers(deps.workers ?? []);
    if (dead.length === 0) sendJson(res, "200 OK", { status: "ok" });
    else sendJson(res, "503 Service Unavailable", { status: "dead", dead });
  });
  app.get("/readyz", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const directory = deps.directory;
    Promise.all([deps.store.ping().catch(() => false), directory ? directoryAnswers(directory) : Promise.resolve(true)]).then(([storeOk, directoryOk]) => {
      if (aborted) return;
      const dead = deadWorkers(deps.workers ?? []);
      const ready = storeOk && directoryOk && dead.length === 0 && !deps.isShuttingDown();
      const bus = deps.bus?.health().state ?? "local";
      sendJson(res, ready ? "200 OK" : "503 Service Unavailable", {
        status: ready ? (bus === "down" ? "degraded" : "ready") : "not-ready",
        store: storeOk ? "ok" : "down",
        directory: directoryOk ? "ok" : "down",
        bus,
        shuttingDown: deps.isShuttingDown(),
        ...(dead.length > 0 ? { dead } : {}),
        ...(deps.backups ? { backups: deps.backups() } : {}),
      });
    });
  });
  app.any("/*", (res) => sendError(res, "404 Not Found", ErrorCode.NotFound, "not found"));
}
