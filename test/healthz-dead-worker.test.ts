// Liveness with a dead worker thread: a real server on its SQLite data directory, one of its
// worker threads (store, directory, audit log, partner storage) killed as a crash would. A dead
// worker is never restarted in the process, so /healthz answers 503 naming it (a supervisor then
// restarts the process); /readyz answers 503 naming it as well, whichever worker it was (without
// the audit log or partner storage, sign-ins, audited changes and partner events all fail), and
// the rest of the process keeps answering.

import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { waitUntil } from "./helpers/wait.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function probe(server: TestServer, path: "/healthz" | "/readyz"): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.httpUrl}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function started(): Promise<TestServer> {
  const server = await startTestServer();
  cleanups.push(() => server.cleanup());
  return server;
}

describe("/healthz", { timeout: 90_000 }, () => {
  it("answers 200 while every worker thread runs, and lists all four", async () => {
    const server = await started();
    expect(await probe(server, "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    const readiness = await probe(server, "/readyz");
    expect(readiness).toMatchObject({ status: 200, body: { status: "ready" } });
    expect(readiness.body).not.toHaveProperty("dead");
    expect(server.server.workers.map((w) => w.name).sort()).toEqual(["audit log worker", "directory worker", "partner storage worker", "store worker"]);
  });

  // Every dead worker makes the node unready and is named; the store and directory probes still say what they found.
  const cases = [
    { worker: "store worker", store: "down", directory: "ok" },
    { worker: "directory worker", store: "ok", directory: "down" },
    { worker: "audit log worker", store: "ok", directory: "ok" },
    { worker: "partner storage worker", store: "ok", directory: "ok" },
  ];
  for (const { worker, store, directory } of cases) {
    it(`answers 503 naming the ${worker} once it died, for good; /readyz 503 naming it too`, async () => {
      const server = await started();
      const thread = server.server.workers.find((w) => w.name === worker);
      if (!thread) throw new Error(`no ${worker} in ${server.server.workers.map((w) => w.name).join(", ")}`);
      await thread.killForTesting();
      await waitUntil(async () => (await probe(server, "/healthz")).status === 503, { what: `/healthz failing after the ${worker} died`, interval: 50 });
      const health = await probe(server, "/healthz");
      expect(health.body).toEqual({ status: "dead", dead: [{ name: worker, cause: expect.stringContaining(`${worker} exited`) }] });
      expect(await probe(server, "/readyz")).toMatchObject({
        status: 503,
        body: { status: "not-ready", store, directory, dead: [{ name: worker, cause: expect.stringContaining(`${worker} exited`) }] },
      });
      // Still dead on the next look: nothing restarts the worker in this process.
      expect((await probe(server, "/healthz")).status).toBe(503);
    });
  }
});
