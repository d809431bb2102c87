// One request with bad percent-encoding used to stop the whole process (an uncaught URIError from
// decodeURIComponent in a uWS handler). Each place that decodes a URL part gets one here, against a
// real `parley serve` process, and the process must still answer afterwards.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { childToken, startChildServer, type ChildServer } from "./helpers/child-server.ts";

let dataDir: string;
let child: ChildServer;
let base: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "parley-pct-"));
  child = await startChildServer(dataDir);
  base = `http://127.0.0.1:${child.port}`;
}, 90_000);

afterAll(async () => {
  child?.process.kill("SIGTERM");
  await child?.exited;
  await rm(dataDir, { recursive: true, force: true });
});

/** Opens a socket and resolves with the HTTP status of a refused upgrade (or "open"). */
function upgradeStatus(url: string): Promise<number | "open"> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once("open", () => {
      socket.close();
      resolve("open");
    });
    socket.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("error", reject);
  });
}

async function stillServing(): Promise<void> {
  const health = await fetch(`${base}/healthz`);
  expect(health.status).toBe(200);
}

describe("malformed percent-encoding", () => {
  it("answers 400 for a route parameter, without credentials, and keeps serving", async () => {
    const res = await fetch(`${base}/v1/conversations/%E0%A4%A`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; message: string } };
    expect(body.error.message).toMatch(/percent-encoding/);
    await stillServing();
  });

  it("answers 400 for the invitation page", async () => {
    for (const method of ["GET", "POST"]) {
      const res = await fetch(`${base}/invite/%E0%A4%A`, { method });
      expect(res.status).toBe(400);
    }
    await stillServing();
  });

  it("refuses a /yjs upgrade with a malformed room name or token", async () => {
    const token = await childToken(dataDir, "u", "o", { room: "writer" });
    expect(await upgradeStatus(`ws://127.0.0.1:${child.port}/yjs/%E0%A4%A?token=${token}`)).toBe(400);
    expect(await upgradeStatus(`ws://127.0.0.1:${child.port}/yjs/room?token=%E0%A4%A`)).toBe(400);
    expect(await upgradeStatus(`ws://127.0.0.1:${child.port}/yjs/room?token=${token}`)).toBe("open");
    await stillServing();
  });

  it("answers 400 for a malformed query string value", async () => {
    const res = await fetch(`${base}/v1/conversations?externalRef=%E0%A4%A`);
    expect([400, 401]).toContain(res.status);
    await stillServing();
  });
});
