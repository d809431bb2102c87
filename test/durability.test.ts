// Durability: documents and audit chains survive a restart, and a server killed with SIGKILL in
// the middle of a write burst loses no update it acknowledged.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { DocFrame } from "../protocol/index.ts";
import { loadOrCreateKeys } from "../server/crypto/keys.ts";
import { readKeyring } from "../server/crypto/master-key.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import { childToken, startChildServer } from "./helpers/child-server.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer } from "./helpers/server.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/** A Y.Doc whose every change is captured as a separate update. */
function recordingDoc() {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  return { doc, updates };
}

async function syncedText(url: string, token: string, conversation: string): Promise<string> {
  const client = await RawClient.authenticated(url, token);
  client.control({ type: "join", conversation });
  await client.waitForControl("joined");
  client.doc(conversation, { type: "sync-step1", stateVector: new Uint8Array([0]) });
  const step2 = (await client.waitFor((f) => f.kind === "doc" && f.message.type === "sync-step2")) as DocFrame;
  client.close();
  const doc = new Y.Doc();
  Y.applyUpdate(doc, (step2.message as { update: Uint8Array }).update);
  return doc.getText("notes").toString();
}

describe("durability", () => {
  it("keeps documents and a verifying audit chain across a restart", async () => {
    const server = await startTestServer({ env: { PARLEY_COMPACT_AFTER_UPDATES: "50" } });
    cleanups.push(() => server.cleanup());
    const token = await server.token({ user: "ann", org: "o", conversations: { kept: "writer" } });
    const client = await RawClient.authenticated(server.url, token);
    client.control({ type: "join", conversation: "kept" });
    await client.waitForControl("joined");
    const { doc, updates } = recordingDoc();
    for (let i = 0; i < 120; i++) doc.getText("notes").insert(doc.getText("notes").length, `${i};`);
    for (const update of updates) client.doc("kept", { type: "update", update });
    await client.waitFor((f) => f.kind === "control" && f.message.type === "ack" && f.message.seq >= 120);
    client.close();

    await server.restart();
    expect(await syncedText(server.url, token, "kept")).toBe(doc.getText("notes").toString());
    const verdict = await verifyConversation(server.server.store, "kept", server.server.keys.auditKey);
    expect(verdict).toMatchObject({ ok: true });
    // Compaction ran (every 50 updates) and its snapshots are inside the chain.
    const entries = await server.server.store.readEntries("kept", 0, 1000);
    expect(entries.some((e) => e.kind === "snapshot")).toBe(true);
  });

  it("loses no acknowledged update when the server is killed mid-burst", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-kill-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startChildServer(dataDir, { PARLEY_MAX_FRAMES_PER_SECOND: "100000" });
    cleanups.push(async () => {
      first.process.kill("SIGKILL");
    });
    const token = await childToken(dataDir, "kim", "o", { burst: "writer" });
    const client = await RawClient.authenticated(first.url, token);
    client.control({ type: "join", conversation: "burst" });
    await client.waitForControl("joined");

    const { doc, updates } = recordingDoc();
    const text = doc.getText("notes");
    for (let i = 0; i < 2000; i++) text.insert(text.length, `<${i}>`);
    // Send everything at once, then kill the server as soon as some acks are back.
    for (const update of updates) client.doc("burst", { type: "update", update });
    await client.waitFor((f) => f.kind === "control" && f.message.type === "ack" && f.message.seq >= 200, 15_000);
    first.process.kill("SIGKILL");
    await first.exited;
    await client.closed().catch(() => undefined);
    const acked = client.frames.filter((f) => f.kind === "control" && f.message.type === "ack").length;
    expect(acked).toBeGreaterThanOrEqual(200);
    console.log(`acked ${acked} of ${updates.length} before SIGKILL`);

    const second = await startChildServer(dataDir);
    cleanups.push(async () => {
      second.process.kill("SIGKILL");
    });
    const recovered = await syncedText(second.url, token, "burst");
    for (let i = 0; i < acked; i++) expect(recovered).toContain(`<${i}>`);
    second.process.kill("SIGTERM");
    expect(await second.exited).toBe(0);

    const store = await openSqliteStore({
      path: path.join(dataDir, "parley.db"),
      auditKey: (await loadOrCreateKeys(path.join(dataDir, "keys"))).auditKey,
      masterKeys: readKeyring(path.join(dataDir, "keys")),
    });
    try {
      expect(await verifyConversation(store, "burst", (await loadOrCreateKeys(path.join(dataDir, "keys"))).auditKey)).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  });
});
