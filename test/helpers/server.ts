// Starts a real Parley server in this process on an ephemeral port with its own data directory,
// mints tokens with its key, and restarts it on the same port and data (to test durability).

import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Role } from "../../protocol/index.ts";
import { type ParleyServer, startServer } from "../../server/app.ts";
import { mintToken } from "../../server/auth/tokens.ts";
import { loadConfig } from "../../server/platform/config.ts";
import { createLogger } from "../../server/platform/logger.ts";
import { addOutbox } from "./mailboxes.ts";
import { systemClock } from "../../server/platform/clock.ts";

/** What a test asks a token for. */
export interface TestTokenRequest {
  user: string;
  org: string;
  conversations: Record<string, Role>;
  ttlSeconds?: number;
}

/** A running test server. */
export interface TestServer {
  /** ws://127.0.0.1:<port>/ws */
  url: string;
  /** http://127.0.0.1:<port> */
  httpUrl: string;
  /** ws://127.0.0.1:<port>/yjs (y-websocket's serverUrl; the room name is appended) */
  yjsUrl: string;
  port: number;
  dataDir: string;
  server: ParleyServer;
  token(request: TestTokenRequest): Promise<string>;
  /** Graceful stop; the data directory is kept until cleanup(). */
  stop(): Promise<void>;
  /** Starts again on the same port and data directory. */
  restart(): Promise<void>;
  /** Stops (if running) and deletes the data directory. */
  cleanup(): Promise<void>;
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Starts a server; `env` overrides settings as environment variables would. */
export async function startTestServer(
  options: {
    env?: Record<string, string>;
    dataDir?: string;
    now?: () => number;
    /** Receives every log line at info level and above (tests that read the logs). */
    logLines?: (line: string) => void;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "parley-test-")));
  addOutbox(dataDir);
  const capture = options.logLines;
  const logger = capture ? createLogger("info", { write: (line: string) => capture(line) }) : createLogger(process.env.PARLEY_TEST_LOG ?? "silent");
  // Load shedding off unless a test turns it on: a test process's event loop is often busy for
  // seconds on end (a long synchronous check, a loaded machine), and writes must not be refused then.
  const configFor = (port: number) => loadConfig({ HOST: "127.0.0.1", PORT: String(port), PARLEY_DATA_DIR: dataDir, PARLEY_SHED_LOOP_PERCENT: "0", ...options.env });
  // An explicit port, not 0: uSockets sets SO_REUSEADDR only on explicit ports, and restart()
  // must bind the same port again while the old connections sit in TIME_WAIT.
  const port = await freePort();
  let server: ParleyServer | null = await startServer(configFor(port), logger, { now: options.now });
  const test: TestServer = {
    url: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    yjsUrl: `ws://127.0.0.1:${port}/yjs`,
    port,
    dataDir,
    get server() {
      if (!server) throw new Error("test server is stopped");
      return server;
    },
    async token(request) {
      const current = test.server;
      return mintToken(current.keys, current.config.tokens, { ttlSeconds: 3600, ...request }, options.now ?? systemClock);
    },
    async stop() {
      const current = server;
      server = null;
      await current?.close();
    },
    async restart() {
      await test.stop();
      server = await startServer(configFor(port), logger, { now: options.now });
    },
    async cleanup() {
      await test.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return test;
}
