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

/**
 * Opens a /yjs socket and resolves with its close code once the server closes it, or "open" when
 * it stays open past its first message (y-websocket stops retrying on 44xx codes, not on HTTP
 * refusals, so refusals are an upgrade closed at once).
 */
function yjsOutcome(url: string): Promise<number | "open"> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once("close", (code) => resolve(code));
    socket.once("message", (data: Buffer) => {
      // A refusal sends y-protocols' permission-denied (message type 2) and then closes; an
      // accepted socket starts with sync (type 0).
      if (data[0] === 2) return;
      socket.removeAllListeners("close");
      socket.close();
      resolve("open");
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

  it("refuses a /yjs socket with a malformed room name or token as a protocol violation (4400)", async () => {
    const token = await childToken(dataDir, "u", "o", { room: "writer" });
    expect(await yjsOutcome(`ws://127.0.0.1:${child.port}/yjs/%E0%A4%A?token=${token}`)).toBe(4400);
    expect(await yjsOutcome(`ws://127.0.0.1:${child.port}/yjs/room?token=%E0%A4%A`)).toBe(4400);
    expect(await yjsOutcome(`ws://127.0.0.1:${child.port}/yjs/room?token=${token}`)).toBe("open");
    await stillServing();
  });

  it("answers 400 for a malformed query string value", async () => {
    const res = await fetch(`${base}/v1/conversations?externalRef=%E0%A4%A`);
    expect([400, 401]).toContain(res.status);
    await stillServing();
  });
});
