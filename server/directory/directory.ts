// The directory seam: who exists, who belongs where, and who may see which conversation. On the
// embedded default it is a SQLite file served by a worker thread; the event loop only awaits.

import { WorkerService, type Promised } from "../worker/worker-service.ts";
import type { SqliteDirectory } from "./sqlite-directory.ts";

/** Every directory operation, asynchronous. */
export type Directory = Promised<SqliteDirectory>;

/** A running directory and how to stop it. */
export interface DirectoryHandle {
  directory: Directory;
  alive(): boolean;
  close(): Promise<void>;
}

/** Opens the embedded directory (`path` is its SQLite file). */
export async function openSqliteDirectory(path: string): Promise<DirectoryHandle> {
  const service = await WorkerService.start<SqliteDirectory>(new URL("./sqlite-directory.ts", import.meta.url), { path });
  return { directory: service.api, alive: () => service.alive, close: () => service.close() };
}
