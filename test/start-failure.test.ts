// A start that fails halfway closes what it had opened (issue 15): here the port is taken, which
// is found last, after the lock, the store, the worker threads and the background loops were
// opened. The same process then starts again on the same data directory and a free port.

import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../server/app.ts";
import { runningServer } from "../server/backup/server-lock.ts";
import { loadConfig } from "../server/platform/config.ts";
import { createLogger } from "../server/platform/logger.ts";
import { StartupRefusal } from "../server/platform/startup-refusal.ts";
import { freePort } from "./helpers/server.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe("a start that fails halfway", () => {
  it("closes what it opened: the same process starts again on the same data directory", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-start-failure-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const taken = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(taken, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const logger = createLogger("silent");
    const config = (port: number) => loadConfig({ HOST: "127.0.0.1", PORT: String(port), PARLEY_DATA_DIR: dataDir });

    await expect(startServer(config(taken), logger)).rejects.toBeInstanceOf(StartupRefusal);
    // The data directory is not left announced as served: `parley restore` would refuse to run
    // (a live process still holding it) although no server is there.
    expect(await runningServer(dataDir)).toBeNull();

    const server = await startServer(config(await freePort()), logger);
    cleanups.push(() => server.close());
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });
});
