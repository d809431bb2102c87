// `parley serve` refuses to start, with a message that says why and exit code 3, when another
// server holds its data directory or its port (two processes on one database or one port split
// the clients: neither sees the other's writes), or when keyring.db is missing next to a database
// that holds conversations (every join would answer "retry" forever). Real processes throughout.

import { mkdtemp, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { STARTUP_REFUSED_EXIT_CODE } from "../server/platform/startup-refusal.ts";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { apiClient } from "./helpers/http-client.ts";
import { signUp } from "./helpers/sign-up.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "parley-refusal-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function running(dir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const server = await startChildServer(dir, env);
  cleanups.push(async () => {
    server.process.kill("SIGKILL");
    await server.exited;
  });
  return server;
}

async function stopped(server: ChildServer): Promise<void> {
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);
}

const refusal = (why: RegExp) => new RegExp(`exited \\(${STARTUP_REFUSED_EXIT_CODE}\\)[\\s\\S]*refusing to start: [\\s\\S]*${why.source}`);

describe("startup refusals", { timeout: 120_000 }, () => {
  it("refuses a second server on a data directory a running server holds", async () => {
    const dir = await dataDir();
    const first = await running(dir);
    await expect(startChildServer(dir)).rejects.toThrow(refusal(new RegExp(`in use by a running server \\(pid ${first.process.pid}`)));
    // The first one is untouched and still serving.
    expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200);
  });

  it("starts on a data directory whose previous server was killed (a stale record)", async () => {
    const dir = await dataDir();
    const first = await running(dir);
    first.process.kill("SIGKILL");
    await first.exited;
    const second = await running(dir);
    expect((await fetch(`http://127.0.0.1:${second.port}/healthz`)).status).toBe(200);
  });

  it("refuses a port another server listens on", async () => {
    const first = await running(await dataDir());
    await expect(startChildServer(await dataDir(), { PORT: String(first.port) })).rejects.toThrow(refusal(/cannot listen on 127\.0\.0\.1:\d+: the port is in use/));
    expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200);
  });

  it("refuses to start without keyring.db when the database holds conversations", async () => {
    const dir = await dataDir();
    const first = await running(dir);
    const api = apiClient(`http://127.0.0.1:${first.port}`);
    const owner = await signUp(api, "kim@helpdesk.example", "Helpdesk BV");
    const created = await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Keys" } });
    expect((await api("POST", `/v1/conversations/${created.body.id}/messages`, { token: owner.token, body: { text: "hello" } })).status).toBe(201);
    await stopped(first);
    await unlink(path.join(dir, "keyring.db"));
    await expect(startChildServer(dir)).rejects.toThrow(refusal(/keyring\.db is missing but .* holds 1 conversation/));
  });
});
