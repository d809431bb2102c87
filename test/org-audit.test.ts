// Organisation audit chains: a real sign-in / API key flow leaves its events, in order, in the
// organisation's chain; personal data appears only as keyed hashes; the chain verifies; and
// concurrent writers (several recorders on one Postgres schema) leave one unbroken chain.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { openAuditLog } from "../server/directory/audit-log.ts";
import { chainRef, exportCheckpoint, verifyCheckpoints } from "../server/audit/checkpoint.ts";
import { loadOrCreateCheckpointKey } from "../server/audit/checkpoint-key.ts";
import { Checkpointer } from "../server/audit/checkpointer.ts";
import { type OrgAuditEntry, OrgChainVerifier } from "../server/directory/org-chain.ts";
import { OrgAuditRecorder } from "../server/directory/org-recorder.ts";
import { createLogger } from "../server/platform/logger.ts";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { requirePostgres } from "./helpers/services.ts";
import { confirmedSignUp } from "./helpers/sign-up.ts";
import { waitUntil } from "./helpers/wait.ts";

const PASSWORD = "violet-harbour-tractor-91!";

let server: TestServer | null = null;
afterEach(async () => {
  await server?.cleanup();
  server = null;
});

async function orgChain(s: TestServer, org: string): Promise<OrgAuditEntry[]> {
  return s.server.audit.log.readOrgAuditEntries(org, 0, 10_000);
}

describe("organisation audit chain", () => {
  it("records sign-ins, failures and API key creation, use and revocation, in one verifying chain", async () => {
    server = await startTestServer();
    const api = apiClient(server.httpUrl);
    const signup = await confirmedSignUp(api, { email: "olga@acme.example", password: PASSWORD, name: "Olga", organisation: "Acme" });
    expect(signup.status).toBe(201);
    const { organisation, user } = signup.body as { organisation: { id: string }; user: { id: string } };
    const org = organisation.id;
    const userId = user.id;
    expect((await api("POST", "/v1/auth/login", { body: { email: "olga@acme.example", password: "wrong-password-123456" } })).status).toBe(401);
    const login = await api("POST", "/v1/auth/login", { body: { email: "olga@acme.example", password: PASSWORD } });
    expect(login.status).toBe(200);
    const token = login.body.accessToken as string;
    const created = await api("POST", `/v1/organisations/${org}/api-keys`, { token, body: { name: "erp", scopes: ["conversations:read"] } });
    expect(created.status).toBe(201);
    const keyId = created.body.id as string;
    // Used twice within the hour: recorded once.
    for (let i = 0; i < 2; i++) expect((await api("GET", "/v1/conversations", { token: created.body.key as string })).status).toBe(200);
    expect((await api("DELETE", `/v1/organisations/${org}/api-keys/${keyId}`, { token })).status).toBe(204);

    // The failed sign-in is recorded without the response waiting for it: wait for the entry.
    const running = server;
    await waitUntil(async () => (await orgChain(running, org)).length >= 7, { what: "seven org audit entries" });
    const entries = await orgChain(server, org);
    const actions = entries.map((e) => e.action);
    expect(actions).toEqual(["organisation.created", "login.succeeded", "login.failed", "login.succeeded", "api-key.created", "api-key.used", "api-key.revoked"]);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(entries[0]).toMatchObject({ actor: `user:${userId}`, target: org });
    expect(entries[1]).toMatchObject({ actor: `user:${userId}`, target: userId, details: { signup: true } });
    expect(entries[3]).toMatchObject({ actor: `user:${userId}`, target: userId });
    expect(entries[5]).toMatchObject({ actor: `api-key:${keyId}`, target: keyId });
    // Personal data only as keyed hashes.
    const text = JSON.stringify(entries.map((e) => e.details));
    expect(text).not.toContain("127.0.0.1");
    expect(text).not.toContain("olga@");
    expect(entries[3].details.ipHash).toMatch(/^[0-9a-f]{64}$/);

    const verdict = await api("GET", `/v1/organisations/${org}/audit/verify`, { token });
    expect(verdict.body).toMatchObject({ ok: true, entries: 7, chain: `org:${org}` });

    // An entry edited in the directory file is named by `parley audit verify --org`.
    await server.stop();
    const db = new Database(path.join(server.dataDir, "directory.db"));
    db.prepare("UPDATE org_audit_entries SET actor = 'user:someone-else' WHERE org_id = ? AND seq = 2").run(org);
    db.close();
    const run = await runParley(["audit", "verify", "--org", org], { PARLEY_DATA_DIR: server.dataDir });
    expect(run.stdout).toMatch(/BROKEN {2}org:\S+: first broken entry seq 2: hash does not recompute/);
    expect(run.code).toBe(1);

    const verifier = new OrgChainVerifier(org);
    for (const e of entries) expect(verifier.push(e)).toBe(true);
    expect(verifier.result()).toMatchObject({ ok: true, entries: 7 });
    const swapped = new OrgChainVerifier(org);
    for (const e of [entries[0], entries[2], entries[1]]) swapped.push(e);
    expect(swapped.result()).toMatchObject({ ok: false, seq: 2 });
  });

  it("records invitations sent and revoked and participant changes in both organisations' chains", async () => {
    server = await startTestServer();
    const api = apiClient(server.httpUrl);
    const signUp = async (email: string, organisation: string) => {
      const response = await confirmedSignUp(api, { email, password: PASSWORD, name: "X", organisation });
      return response.body as { accessToken: string; organisation: { id: string } };
    };
    const buyer = await signUp("bea@buyer.example", "Buyer");
    const seller = await signUp("sol@seller.example", "Seller");
    const created = await api("POST", "/v1/conversations", {
      token: buyer.accessToken,
      body: { title: "Order 7", invitations: [{ email: "ivan@guest.example" }] },
    });
    expect(created.status).toBe(201);
    const conversation = (created.body as { id: string }).id;
    const invitations = await api("GET", `/v1/conversations/${conversation}/invitations`, { token: buyer.accessToken });
    const invitation = (invitations.body as { items: { id: string }[] }).items[0].id;
    expect((await api("DELETE", `/v1/invitations/${invitation}`, { token: buyer.accessToken })).status).toBe(204);
    const add = await api("POST", `/v1/conversations/${conversation}/participants`, { token: buyer.accessToken, body: { organisation: seller.organisation.id } });
    expect(add.status).toBe(200);
    expect((await api("DELETE", `/v1/conversations/${conversation}/participants/${seller.organisation.id}`, { token: buyer.accessToken })).status).toBe(204);

    const buyerChain = await orgChain(server, buyer.organisation.id);
    expect(buyerChain.map((e) => e.action)).toEqual(["organisation.created", "login.succeeded", "invitation.sent", "invitation.revoked", "participant.added", "participant.removed"]);
    expect(buyerChain[2].details).toMatchObject({ conversation, role: "participant" });
    expect(JSON.stringify(buyerChain)).not.toContain("ivan@");
    const sellerChain = await orgChain(server, seller.organisation.id);
    expect(sellerChain.map((e) => e.action)).toEqual(["organisation.created", "login.succeeded", "participant.added", "participant.removed"]);
  });

  it("rejects details that would not encode canonically, and records nothing", async () => {
    server = await startTestServer();
    const recorder = server.server.audit.recorder;
    await expect(
      recorder.recordOrgEvent("org_x", { action: "audit.exported", actor: "system", details: { nested: { a: 1 } as unknown as string } }),
    ).rejects.toThrow(/detail "nested"/);
    expect(await server.server.audit.log.orgAuditHead("org_x")).toBeNull();
  });
});

describe("organisation audit chain on Postgres", () => {
  it("gives concurrent writers on several connections one gap-free chain", async () => {
    const url = await requirePostgres();
    if (!url) return;
    const schema = `org_audit_${process.pid}_${Date.now()}`;
    const handles = await Promise.all([1, 2, 3].map(() => openAuditLog({ dataDir: "/nonexistent", databaseUrl: url, schema })));
    try {
      const logger = createLogger("silent");
      const auditKey = new Uint8Array(32).fill(7);
      const recorders = handles.map((h) => new OrgAuditRecorder({ log: h.log, auditKey, now: Date.now, logger }));
      await Promise.all(
        Array.from({ length: 60 }, (_, i) => recorders[i % 3].recordOrgEvent("org_busy", { action: "audit.exported", actor: "system", target: `c${i}` })),
      );
      const entries = await handles[0].log.readOrgAuditEntries("org_busy", 0, 1000);
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      const verifier = new OrgChainVerifier("org_busy");
      for (const e of entries) verifier.push(e);
      expect(verifier.result()).toMatchObject({ ok: true, entries: 60 });
      expect((await handles[0].log.orgAuditHead("org_busy"))?.seq).toBe(60);

      // Three nodes checkpointing the same intervals at once: exactly one checkpoint per
      // interval, each linked to the one before.
      const dir = await mkdtemp(path.join(tmpdir(), "parley-ckpt-key-"));
      const key = await loadOrCreateCheckpointKey(dir);
      let clock = 1_800_000_000_000;
      const checkpointers = handles.map(
        (h) => new Checkpointer({ log: h.log, store: { listChainHeads: async () => [] }, key, auditKey, intervalSeconds: 60, now: () => clock, logger }),
      );
      for (let i = 0; i < 3; i++) {
        clock += 60_000;
        const made = await Promise.all(checkpointers.map((c) => c.tick()));
        expect(made.filter((m) => m !== null)).toHaveLength(1);
      }
      const stored = (await handles[1].log.listAuditCheckpoints(-1, 100)).map(exportCheckpoint);
      expect(stored).toHaveLength(3);
      expect(verifyCheckpoints(stored, key.publicKey, { fromStart: true })).toEqual({ ok: true, count: 3 });
      expect(stored[0].body.heads.map((h) => h[0])).toContain(chainRef(auditKey, "org:org_busy"));
      await rm(dir, { recursive: true, force: true });
    } finally {
      await Promise.all(handles.map((h) => h.close()));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });
});
