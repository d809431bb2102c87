// Production runs compiled JavaScript: `npm run build` emits dist/ (no TypeScript in it), and
// `parley serve` from that build — main thread and every worker thread (SQLite store, directory,
// audit log, partner events) — serves the README's journey against a real data directory.

import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { apiClient } from "./helpers/http-client.ts";
import { signUp } from "./helpers/sign-up.ts";

const execFileAsync = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");

let dataDir: string;
let child: ChildServer | undefined;

beforeAll(async () => {
  await execFileAsync("npm", ["run", "--silent", "build"], { cwd: root, timeout: 240_000 });
  dataDir = await mkdtemp(path.join(tmpdir(), "parley-compiled-"));
}, 300_000);

afterAll(async () => {
  if (child && child.process.exitCode === null) {
    child.process.kill("SIGKILL");
    await child.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("the compiled server (npm run build, then bin/parley.js)", () => {
  it("holds JavaScript only, with the worker entry and the worker modules it loads", async () => {
    const files = (await readdir(dist, { recursive: true })).map((file) => file.split(path.sep).join("/"));
    expect(files).toContain("server/cli.js");
    expect(files).toContain("server/sql/worker-entry.mjs");
    expect(files).toContain("server/store/sqlite/worker.js");
    expect(files.filter((file) => file.endsWith(".ts"))).toEqual([]);
    const cli = await readFile(path.join(dist, "server/cli.js"), "utf8");
    expect(cli).not.toMatch(/from\s+["'][^"']*\.ts["']/);
  });

  it("serves sign-up, conversations, durable messages, audit and partner events from the build", async () => {
    // PARLEY_RUN_SOURCE is what the test suite sets to run the sources; unset, bin/parley.js runs dist/.
    child = await startChildServer(dataDir, { PARLEY_RUN_SOURCE: "0" });
    const api = apiClient(`http://127.0.0.1:${child.port}`);
    const owner = await signUp(api, "ann@compiled.example", "Compiled BV");
    const created = await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Built", externalRef: "B-1" } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const posted = await api("POST", `/v1/conversations/${id}/messages`, { token: owner.token, body: { text: "from dist/" } });
    expect(posted.status).toBe(201);
    expect(posted.body.seq).toBeGreaterThan(0);
    const listed = await api("GET", `/v1/conversations/${id}/messages`, { token: owner.token });
    expect(JSON.stringify(listed.body)).toContain("from dist/");
    const verified = await api("GET", `/v1/organisations/${owner.orgId}/audit/verify`, { token: owner.token });
    expect(verified.status).toBe(200);
    const events = await api("GET", "/v1/events?after=0", { token: owner.token });
    expect(events.status).toBe(200);
    expect(JSON.stringify(events.body)).toContain("conversation.created");

    child.process.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  });
});
