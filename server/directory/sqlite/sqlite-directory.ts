// The embedded directory as the event loop sees it: every operation is a message to the worker
// thread (directory-worker.ts) that owns the SQLite file, so the event loop never waits on disk.

import { WorkerCallError, WorkerService } from "../../sql/worker-service.ts";
import { DirectoryError, type DirectoryHandle, forwardDirectory } from "../directory.ts";
import type { DirectoryWorker } from "./directory-worker.ts";
import { moduleBeside } from "../../sql/module-url.ts";

/** Opens (creating or migrating) the directory in the SQLite file at `path`. */
export async function openSqliteDirectory(path: string): Promise<DirectoryHandle> {
  const service = await WorkerService.start<DirectoryWorker>(moduleBeside(import.meta.url, "./directory-worker"), { path }, { name: "directory worker" });
  const api = service.api as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const directory = forwardDirectory((op, args) => api[op](...args).catch((error: unknown) => Promise.reject(fromWorker(error))));
  return { directory, alive: () => service.alive, workers: [service], close: () => service.close() };
}

/** Errors cross the thread as WorkerCallError; the directory's own come back as DirectoryError. */
function fromWorker(error: unknown): unknown {
  if (!(error instanceof WorkerCallError)) return error;
  if (error.originalName === "DirectoryError") return new DirectoryError(error.code as DirectoryError["code"], error.message);
  if (error.code === "unavailable" || error.code === "closed" || error.code === "SQLITE_BUSY") {
    return new DirectoryError("unavailable", `the directory is unavailable: ${error.message}`);
  }
  return error;
}
