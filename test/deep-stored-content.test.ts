// Bounded work per stored byte (issue 18, finding 2): a conversation whose stored log holds a map
// nested 40 000 deep (written straight into the store, as an older server acknowledged it) answers
// every read that would serialise it with a clear error for that request (5005 ContentTooComplex),
// and the real `parley serve` process keeps serving, also after restarts. (The message list only
// reads message entries, so there the deep map is skipped, not refused.)

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { loadOrCreateKeys } from "../server/crypto/keys.ts";
import { readKeyring } from "../server/crypto/master-key.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { deeplyNestedUpdate } from "./helpers/deep-update.ts";
import { apiClient } from "./helpers/http-client.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";

let dataDir: string;
let server: ChildServer | null = null;
let api: ReturnType<typeof apiClient>;
let owner: SignedUp;
let conversation: string;
let healthy: string;

async function start(): Promise<void> {
  server = await startChildServer(dataDir);
  api = apiClient(`http://127.0.0.1:${server.port}`);
}

async function stop(): Promise<void> {
  if (!server) return;
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);
  server = null;
}

/** Appends updates straight to the stopped server's store, bypassing every write-time check. */
async function appendStraightToStore(payloads: Uint8Array[]): Promise<void> {
  const keysDir = path.join(dataDir, "keys");
  const keys = await loadOrCreateKeys(keysDir);
  const store = await openSqliteStore({ path: path.join(dataDir, "parley.db"), auditKey: keys.auditKey, masterKeys: readKeyring(keysDir) });
  try {
    await store.appendBatch(payloads.map((payload) => ({ conversation, kind: "update", actor: { user: owner.userId, org: owner.orgId, session: "old-server" }, payload })));
  } finally {
    await store.close();
  }
}

async function expectReadsRefusedAndServing(): Promise<void> {
  // The message list skips what is not a message: the deep map in it costs nothing to read.
  const messages = await api("GET", `/v1/conversations/${conversation}/messages`, { token: owner.token });
  expect(messages.status).toBe(200);
  expect((messages.body.items as { text: string }[]).map((m) => m.text)).toEqual(["hello"]);
  // The past state renders the meta map too: the one nested 40 000 deep is refused, for this request.
  const history = await api("GET", `/v1/conversations/${conversation}/history?seq=3`, { token: owner.token });
  expect(history.status).toBe(500);
  expect(history.body.error?.code).toBe(ErrorCode.ContentTooComplex);
  // The same server answers everything else, other conversations included.
  expect((await api("GET", "/healthz")).status).toBe(200);
  const other = await api("GET", `/v1/conversations/${healthy}/messages`, { token: owner.token });
  expect(other.status).toBe(200);
  expect(other.body.items).toHaveLength(1);
  expect(server?.process.exitCode).toBeNull();
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "parley-deep-"));
  await start();
  owner = await signUp(api, "olga@helpdesk.example", "Helpdesk BV");
  for (const title of ["Deep", "Healthy"]) {
    const created = await api("POST", "/v1/conversations", { token: owner.token, body: { title } });
    expect(created.status).toBe(201);
    if (title === "Deep") conversation = created.body.id as string;
    else healthy = created.body.id as string;
  }
  for (const id of [conversation, healthy]) expect((await api("POST", `/v1/conversations/${id}/messages`, { token: owner.token, body: { text: "hello" } })).status).toBe(201);
  await stop();
  // 40 000 maps, each inside the one before: in the message list and in the meta map.
  await appendStraightToStore([deeplyNestedUpdate(40_000, { client: 9001 }), deeplyNestedUpdate(40_000, { client: 9002, root: "meta", rootKind: "map" })]);
}, 120_000);

afterAll(async () => {
  if (server) server.process.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
});

describe("stored content nested 40 000 deep", { timeout: 120_000 }, () => {
  it("answers each read with ContentTooComplex and keeps serving, across restarts", async () => {
    await start();
    await expectReadsRefusedAndServing();
    await stop();
    await start();
    await expectReadsRefusedAndServing();
  });

  it("answers a restore that would have to walk it with ContentTooComplex too, and keeps serving", async () => {
    // Yjs deletes a shared type by recursing into it: this conversation cannot be edited back.
    const restored = await api("POST", `/v1/conversations/${conversation}/restore`, { token: owner.token, body: { seq: 1 } });
    expect(restored.status).toBe(500);
    expect(restored.body.error?.code).toBe(ErrorCode.ContentTooComplex);
    await expectReadsRefusedAndServing();
  });
});
