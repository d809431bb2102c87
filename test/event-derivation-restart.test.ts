// Event derivation writes nothing per commit: what a restart must still derive is found from the
// log's own sequence numbers against each conversation's derivation watermark. A server killed
// after a message committed but before its event was derived reports it after the restart, once.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ParleyEvent } from "../protocol/index.ts";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { apiClient } from "./helpers/http-client.ts";
import { allEvents, signUpWithKey } from "./helpers/partner-orgs.ts";

const dirs: string[] = [];
const running: ChildServer[] = [];

async function kill(server: ChildServer): Promise<void> {
  server.process.kill("SIGKILL");
  await server.exited;
}

afterAll(async () => {
  for (const server of running) if (server.process.exitCode === null && server.process.signalCode === null) await kill(server);
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const messages = (events: ParleyEvent[]) => events.filter((e) => e.type === "message.created").map((e) => (e.data as { message: { text: string } }).message.text);

describe("event derivation across a crash", () => {
  it("derives after a restart what a killed server committed but had not derived, and reports it once", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-derive-restart-"));
    dirs.push(dataDir);
    // A debounce longer than the test: the first server never gets to derive the second message.
    const slow = await startChildServer(dataDir, { PARLEY_EVENT_DEBOUNCE_MS: "10000" });
    running.push(slow);
    let api = apiClient(`http://127.0.0.1:${slow.port}`);
    const helpdesk = await signUpWithKey(api, "ann@helpdesk.example", "Helpdesk BV");
    const created = await api("POST", "/v1/conversations", { token: helpdesk.key, body: { title: "Crash course" } });
    expect(created.status).toBe(201);
    const conversation = created.body.id as string;
    const posted = await api("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text: "Committed before the crash." } });
    expect(posted.status).toBe(201);
    expect(messages(await allEvents(api, helpdesk.key))).toEqual([]);
    await kill(slow);

    const fresh = await startChildServer(dataDir, { PARLEY_EVENT_DEBOUNCE_MS: "20" });
    running.push(fresh);
    api = apiClient(`http://127.0.0.1:${fresh.port}`);
    await expect
      .poll(async () => messages(await allEvents(api, helpdesk.key)), { timeout: 20_000, interval: 100 })
      .toEqual(["Committed before the crash."]);

    // A second restart derives nothing again: the watermark moved (or the event is kept once).
    const after = await api("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text: "After the restart." } });
    expect(after.status).toBe(201);
    await expect
      .poll(async () => messages(await allEvents(api, helpdesk.key)), { timeout: 20_000, interval: 100 })
      .toEqual(["Committed before the crash.", "After the restart."]);
    fresh.process.kill("SIGTERM");
    await fresh.exited;
    const again = await startChildServer(dataDir, { PARLEY_EVENT_DEBOUNCE_MS: "20" });
    running.push(again);
    api = apiClient(`http://127.0.0.1:${again.port}`);
    const barrier = await api("POST", `/v1/conversations/${conversation}/messages`, { token: helpdesk.key, body: { text: "Barrier." } });
    expect(barrier.status).toBe(201);
    await expect
      .poll(async () => messages(await allEvents(api, helpdesk.key)), { timeout: 20_000, interval: 100 })
      .toEqual(["Committed before the crash.", "After the restart.", "Barrier."]);
  }, 120_000);
});
