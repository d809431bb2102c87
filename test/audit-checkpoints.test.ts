// Signed audit checkpoints: one per interval, idle intervals included, each linked to the one
// before and signed with the audit signing key; each lists the heads of the chains that changed.
// The clock is the server's injected one, so intervals pass when the test says.

import { afterEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { type CheckpointBody, chainRef, exportCheckpoint, verifyCheckpoints } from "../server/audit/checkpoint.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";

const INTERVAL_MS = 60_000;
let server: TestServer | null = null;
afterEach(async () => {
  await server?.cleanup();
  server = null;
});

describe("audit checkpoints", () => {
  it("signs one checkpoint per interval, idle ones included, chained and listing the changed heads", async () => {
    let clock = 1_800_000_000_000;
    server = await startTestServer({ now: () => clock });
    const { audit, store } = server.server;
    const doc = new Y.Doc();
    doc.getText("t").insert(0, "hello");
    await store.appendBatch([{ conversation: "c-ckpt", kind: "update", actor: { user: "u", org: "o", session: "s" }, payload: Y.encodeStateAsUpdate(doc) }]);
    await audit.recorder.recordOrgEvent("org_ckpt", { action: "audit.exported", actor: "system", target: "c-ckpt" });

    clock += INTERVAL_MS;
    const first = await audit.checkpointer.tick();
    expect(first).not.toBeNull();
    // Nothing more is due within the same interval.
    expect(await audit.checkpointer.tick()).toBeNull();
    clock += INTERVAL_MS; // an idle interval
    expect(await audit.checkpointer.tick()).toBe((first as number) + 1);
    clock += INTERVAL_MS;
    await audit.recorder.recordOrgEvent("org_ckpt", { action: "audit.exported", actor: "system", target: "c-ckpt" });
    expect(await audit.checkpointer.tick()).toBe((first as number) + 2);

    const stored = (await audit.log.listAuditCheckpoints(-1, 100)).map(exportCheckpoint);
    expect(stored.map((c) => c.body.interval)).toEqual([first, (first as number) + 1, (first as number) + 2]);
    expect(verifyCheckpoints(stored, audit.checkpointKey.publicKey, { fromStart: true })).toEqual({ ok: true, count: 3 });
    // Chains are named by keyed hash: no checkpoint tells its reader which ids exist.
    const ref = (chain: string) => chainRef(server?.server.keys.auditKey as Uint8Array, chain);
    const chains = (b: CheckpointBody) => b.heads.map((h) => `${h[0]}@${h[1]}`);
    expect(chains(stored[0].body).sort()).toEqual([`${ref("conversation:c-ckpt")}@1`, `${ref("org:org_ckpt")}@1`].sort());
    expect(chains(stored[2].body)).toContain(`${ref("org:org_ckpt")}@2`);
    expect(JSON.stringify(stored)).not.toMatch(/c-ckpt|org_ckpt/);

    // A checkpoint edited after signing, or taken out of the run, no longer verifies.
    const edited = structuredClone(stored);
    edited[1].body.heads = [["org:org_ckpt", 9, "00"]];
    expect(verifyCheckpoints(edited, audit.checkpointKey.publicKey)).toMatchObject({ ok: false, interval: (first as number) + 1 });
    expect(verifyCheckpoints([stored[0], stored[2]], audit.checkpointKey.publicKey)).toMatchObject({ ok: false, reason: /does not link/ });
  });

  it("serves the checkpoints with the public key as JSON lines", async () => {
    let clock = 1_800_000_000_000;
    server = await startTestServer({ now: () => clock });
    clock += INTERVAL_MS;
    await server.server.audit.checkpointer.tick();
    const api = apiClient(server.httpUrl);
    const signup = await confirmedSignUp(api, { email: "kim@keeper.example", password: "violet-harbour-tractor-91!", name: "Kim", organisation: "Keeper" });
    const token = (signup.body as { accessToken: string }).accessToken;
    const response = await fetch(`${server.httpUrl}/v1/audit/checkpoints`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const lines = (await response.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: "key", key: { kty: "OKP", crv: "Ed25519" } });
    expect(lines[1]).toMatchObject({ type: "checkpoint", body: { format: "parley/checkpoint/v1" } });
  });
});
