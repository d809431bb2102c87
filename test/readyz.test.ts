// Readiness reports every dependency a node serves from: the store, the directory (sign-in,
// tokens, access) and the bus. One node alone answers ready with all three; a node whose
// Postgres goes away (a proxy cuts it) answers 503 with store and directory down, and ready
// again once Postgres is back.

import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer } from "./helpers/server.ts";
import { requirePostgres } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp-proxy.ts";
import { waitUntil } from "./helpers/wait.ts";

const databaseUrl = await requirePostgres();

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function readiness(httpUrl: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${httpUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("/readyz", { timeout: 90_000 }, () => {
  it("reports store, directory and bus of a node alone", async () => {
    const server = await startTestServer();
    cleanups.push(() => server.cleanup());
    expect(await readiness(server.httpUrl)).toEqual({
      status: 200,
      body: { status: "ready", store: "ok", directory: "ok", bus: "local", shuttingDown: false },
    });
  });

  it.skipIf(!databaseUrl)("answers 503 with the directory down while Postgres is unreachable, and ready once it is back", async () => {
    if (!databaseUrl) return;
    const schema = `parley_ready_${randomBytes(6).toString("hex")}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    cleanups.push(() => admin.end());
    await admin.query(`CREATE SCHEMA "${schema}"`);
    cleanups.push(() => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    const target = new URL(databaseUrl);
    const proxy = await TcpProxy.start([Number(target.port || 5432)]);
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(databaseUrl);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    viaProxy.searchParams.set("options", `-c search_path=${schema}`);

    const server = await startTestServer({ env: { DATABASE_URL: viaProxy.toString() } });
    cleanups.push(() => server.cleanup());
    expect(await readiness(server.httpUrl)).toMatchObject({ status: 200, body: { status: "ready", store: "ok", directory: "ok" } });

    proxy.cut();
    expect(await readiness(server.httpUrl)).toMatchObject({ status: 503, body: { status: "not-ready", store: "down", directory: "down" } });
    // An outage the pools recover from is no reason to restart the process: liveness holds.
    expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);

    proxy.restore();
    await waitUntil(async () => (await readiness(server.httpUrl)).status === 200, { what: "ready again", interval: 100 });
    expect((await readiness(server.httpUrl)).body).toMatchObject({ store: "ok", directory: "ok" });
  });
});
