// Verification against signed checkpoints, end to end: a real server writes a conversation and
// checkpoints it; then the SQLite file is edited directly, the way someone with disk access
// could (an edited, removed, inserted or reordered entry, and a chain recomputed after an edit),
// and `parley audit verify` and GET /v1/conversations/:id/audit/verify must name the break.
// An export verifies offline, and an edited export does not.

import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { entryHash } from "../server/store/audit-chain.ts";
import type { EntryRow } from "./helpers/entry-row.ts";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";

const PASSWORD = "violet-harbour-tractor-91!";
// The checkpointer and the store's entry times both run on this clock (the server's one), so a
// checkpoint's "changed since" sees every entry written before it.
let clock = Date.now();
let server: TestServer;
let token: string;
let conversation: string;
const copies: string[] = [];

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  const api = apiClient(server.httpUrl);
  const signup = await confirmedSignUp(api, { email: "vera@verify.example", password: PASSWORD, name: "Vera", organisation: "Verify" });
  const body = signup.body as { accessToken: string; user: { id: string }; organisation: { id: string } };
  token = body.accessToken;
  const created = await api("POST", "/v1/conversations", { token, body: { title: "Audited" } });
  conversation = (created.body as { id: string }).id;
  const doc = new Y.Doc();
  for (let i = 0; i < 6; i++) {
    const before = Y.encodeStateVector(doc);
    doc.getText("t").insert(0, `line ${i}\n`);
    const actor = { user: body.user.id, org: body.organisation.id, session: "s1" };
    await server.server.store.appendBatch([{ conversation, kind: "update", actor, payload: Y.encodeStateAsUpdate(doc, before) }]);
  }
  clock += 60_000;
  expect(await server.server.audit.checkpointer.tick()).not.toBeNull();
  await server.stop();
}, 60_000);

afterAll(async () => {
  await server.cleanup();
  for (const dir of copies) await rm(dir, { recursive: true, force: true });
});

/** A copy of the stopped server's data directory, tampered with by `edit` on its log file. */
async function tamperedCopy(edit: (db: Database.Database) => void): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "parley-verify-"));
  copies.push(dir);
  await cp(server.dataDir, dir, { recursive: true });
  const db = new Database(path.join(dir, "parley.db"));
  try {
    edit(db);
  } finally {
    db.close();
  }
  return dir;
}

const verifyCli = (dir: string, extra: string[] = []) => runParley(["audit", "verify", "--conversation", conversation, ...extra], { PARLEY_DATA_DIR: dir });


const TAMPERING: [string, (db: Database.Database) => void, RegExp][] = [
  ["an edited entry", (db) => db.prepare("UPDATE entries SET user_id = 'mallory' WHERE seq = 3").run(), /seq 3: hash does not recompute/],
  ["a removed entry", (db) => db.prepare("DELETE FROM entries WHERE seq = 3").run(), /seq 3: seq 3 is missing/],
  [
    "an inserted entry",
    (db) => {
      db.prepare("UPDATE entries SET seq = seq + 100 WHERE seq >= 3").run();
      db.prepare("UPDATE entries SET seq = seq - 99 WHERE seq >= 103").run();
      db.prepare(
        "INSERT INTO entries SELECT conversation_id, 3, at, user_id, org_id, session_id, kind, size, content_hmac, prev_hash, hash, payload FROM entries WHERE seq = 2",
      ).run();
    },
    // The moved row's payload fails authenticated decryption (its AAD names its seq) before its links are read.
    /seq 3: (prevHash does not match|cannot decrypt)/,
  ],
  [
    "reordered entries",
    (db) => {
      db.prepare("UPDATE entries SET seq = -1 WHERE seq = 3").run();
      db.prepare("UPDATE entries SET seq = 3 WHERE seq = 4").run();
      db.prepare("UPDATE entries SET seq = 4 WHERE seq = -1").run();
    },
    // The moved row's payload fails authenticated decryption (its AAD names its seq) before its links are read.
    /seq 3: (prevHash does not match|cannot decrypt)/,
  ],
];

/** Edits seq 2's author and recomputes every hash after it and the head: a chain that verifies on its own. */
function recompute(db: Database.Database): void {
  const rows = db.prepare("SELECT * FROM entries ORDER BY seq").all() as EntryRow[];
  let prev = rows[0].hash as Uint8Array;
  for (const row of rows.slice(1)) {
    const user = row.seq === 2 ? "mallory" : row.user_id;
    const fields = {
      conversation: row.conversation_id,
      seq: row.seq,
      at: row.at,
      user,
      org: row.org_id,
      session: row.session_id,
      kind: row.kind,
      size: row.size,
      contentHmac: row.content_hmac,
    };
    const hash = Buffer.from(entryHash(prev, fields));
    db.prepare("UPDATE entries SET user_id = ?, prev_hash = ?, hash = ? WHERE seq = ?").run(user, Buffer.from(prev), hash, row.seq);
    prev = hash;
  }
  db.prepare("UPDATE conversations SET head_hash = ?").run(Buffer.from(prev));
}

describe("audit verify against signed checkpoints", () => {
  it("passes an untouched chain, by the CLI", async () => {
    const run = await verifyCli(server.dataDir);
    expect(run.stdout).toMatch(/^ok {6}conversation:\S+: 6 entries, [1-9]\d* head\(s\) pinned/m);
    expect(run.code).toBe(0);
  });

  for (const [kind, edit, expected] of TAMPERING) {
    it(`names the first broken entry for ${kind}, by the CLI`, async () => {
      const run = await verifyCli(await tamperedCopy(edit));
      expect(run.stdout).toMatch(expected);
      expect(run.code).toBe(1);
    });
  }

  it("catches a chain recomputed after an edit (the checkpoint no longer matches), by the CLI and the API", async () => {
    const dir = await tamperedCopy(recompute);
    const run = await verifyCli(dir);
    expect(run.stdout).toMatch(/BROKEN {2}conversation:\S+: first broken entry seq 6: hash differs from the trusted checkpoint/);
    expect(run.code).toBe(1);

    const copy = await startTestServer({ dataDir: dir, now: () => clock });
    try {
      const api = apiClient(copy.httpUrl);
      const verdict = await api("GET", `/v1/conversations/${conversation}/audit/verify`, { token });
      expect(verdict.status).toBe(200);
      expect(verdict.body).toMatchObject({ ok: false, seq: 6, reason: expect.stringMatching(/trusted checkpoint/) });
      // Someone who can rewrite the chain can delete the stored checkpoints too; the ones the
      // customer kept still catch it.
      const kept = await fetch(`${copy.httpUrl}/v1/audit/checkpoints`, { headers: { authorization: `Bearer ${token}` } });
      const keptFile = path.join(dir, "kept-checkpoints.jsonl");
      await writeFile(keptFile, await kept.text());
      await copy.stop();
      const directory = new Database(path.join(dir, "directory.db"));
      directory.prepare("DELETE FROM audit_checkpoints").run();
      directory.prepare("DELETE FROM audit_checkpoint_head").run();
      directory.close();
      expect((await verifyCli(dir)).code).toBe(0);
      const withKept = await verifyCli(dir, ["--checkpoints", keptFile]);
      expect(withKept.stdout).toMatch(/seq 6: hash differs from the trusted checkpoint/);
      expect(withKept.code).toBe(1);
    } finally {
      await copy.stop();
    }
  });

  it("names the break by the API for an edited entry", async () => {
    const dir = await tamperedCopy(TAMPERING[0][1]);
    const copy = await startTestServer({ dataDir: dir, now: () => clock });
    try {
      const verdict = await apiClient(copy.httpUrl)("GET", `/v1/conversations/${conversation}/audit/verify`, { token });
      expect(verdict.body).toMatchObject({ ok: false, seq: 3, reason: "hash does not recompute from the entry" });
    } finally {
      await copy.stop();
    }
  });

  it("exports a conversation that verifies offline, records the export, and an edited export fails", async () => {
    const dir = await tamperedCopy(() => {});
    const copy = await startTestServer({ dataDir: dir, now: () => clock });
    try {
      const response = await fetch(`${copy.httpUrl}/v1/conversations/${conversation}/audit/export`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).not.toContain("line 0");
      const file = path.join(dir, "export.jsonl");
      await writeFile(file, text);
      const ok = await runParley(["audit", "verify", "--file", file]);
      expect(ok.stdout).toMatch(/^ok {6}conversation:\S+: 6 entries/m);
      expect(ok.code).toBe(0);
      const edited = (await readFile(file, "utf8")).replace(/"seq":4,"at":(\d+),"user":"[^"]+"/, '"seq":4,"at":$1,"user":"mallory"');
      await writeFile(file, edited);
      const bad = await runParley(["audit", "verify", "--file", file]);
      expect(bad.stdout).toMatch(/seq 4: hash does not recompute/);
      expect(bad.code).toBe(1);
      const orgEntries = await apiClient(copy.httpUrl)("GET", `/v1/organisations/${(await orgOf(copy))}/audit/entries`, { token });
      expect((orgEntries.body as { items: { action: string }[] }).items.map((e) => e.action)).toContain("audit.exported");
    } finally {
      await copy.stop();
    }
  });
});

async function orgOf(s: TestServer): Promise<string> {
  const me = await apiClient(s.httpUrl)("GET", "/v1/me", { token });
  return (me.body as { organisation: { id: string } }).organisation.id;
}
