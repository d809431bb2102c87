// Audit entries commit with the change they record: a real `parley serve` process is killed
// (SIGKILL) while several loops create and revoke API keys and member invitations; after a
// restart on the same data, every such change in the directory has its entry in the
// organisation's chain, every entry's change is in the directory, and the chain verifies. On
// SQLite (one file, two connections) and on Postgres (a schema of its own). And deterministically:
// when the audit append fails (a trigger refuses it), the change it records is rolled back too.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type ChildServer, startChildServer } from "./helpers/child-server.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer } from "./helpers/server.ts";
import { requirePostgres } from "./helpers/services.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const httpOf = (server: ChildServer) => `http://127.0.0.1:${server.port}`;

/** Creates and revokes keys and invitations until the server stops answering; counts completed changes. */
async function auditedLoop(base: string, owner: SignedUp, loop: number, done: { count: number }): Promise<void> {
  const api = apiClient(base);
  for (let i = 0; ; i++) {
    try {
      const key = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, body: { name: `k${loop}-${i}`, scopes: ["conversations:read"] } });
      if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
      done.count++;
      const revoked = await api("DELETE", `/v1/organisations/${owner.orgId}/api-keys/${key.body.id as string}`, { token: owner.token });
      if (revoked.status !== 204) throw new Error(`revoke: ${revoked.status}`);
      done.count++;
      const invited = await api("POST", `/v1/organisations/${owner.orgId}/members`, { token: owner.token, body: { email: `p${loop}-${i}@crash.example`, role: "member" } });
      if (invited.status !== 202) throw new Error(`invite: ${invited.status} ${JSON.stringify(invited.body)}`);
      done.count++;
      if (i % 2 === 0) {
        const id = (invited.body.invitation as { id: string }).id;
        const gone = await api("DELETE", `/v1/organisations/${owner.orgId}/member-invitations/${id}`, { token: owner.token });
        if (gone.status !== 204) throw new Error(`revoke invitation: ${gone.status}`);
        done.count++;
      }
    } catch (error) {
      // The kill: the connection breaks. Anything else is a real failure.
      if (error instanceof TypeError) return;
      throw error;
    }
  }
}

async function crashAndCheck(env: Record<string, string>): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "parley-audit-crash-"));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const first = await startChildServer(dataDir, env);
  cleanups.push(async () => {
    first.process.kill("SIGKILL");
  });
  const owner = await signUp(apiClient(httpOf(first)), "cora@crash.example", "Crash");
  const done = { count: 0 };
  const loops = [0, 1, 2].map((n) => auditedLoop(httpOf(first), owner, n, done));
  // Killed while the loops have changes in flight.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (done.count >= 24) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  first.process.kill("SIGKILL");
  await first.exited;
  await Promise.all(loops);

  const second = await startChildServer(dataDir, env);
  cleanups.push(async () => {
    second.process.kill("SIGKILL");
  });
  try {
    const api = apiClient(httpOf(second));
    const entries: { action: string; target: string; seq: number }[] = [];
    for (let after = 0; ; ) {
      const page = await api("GET", `/v1/organisations/${owner.orgId}/audit/entries?after=${after}&limit=1000`, { token: owner.token });
      const items = (page.body as { items: { action: string; target: string; seq: number }[] }).items;
      entries.push(...items);
      if (items.length < 1000) break;
      after = items[items.length - 1].seq;
    }
    const targets = (action: string) => new Set(entries.filter((e) => e.action === action).map((e) => e.target));

    const keys = (await api("GET", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token })).body.items as { id: string; revokedAt: number | null }[];
    expect(keys.length).toBeGreaterThan(3);
    expect(new Set(keys.map((k) => k.id))).toEqual(targets("api-key.created"));
    expect(new Set(keys.filter((k) => k.revokedAt !== null).map((k) => k.id))).toEqual(targets("api-key.revoked"));

    const pending = (await api("GET", `/v1/organisations/${owner.orgId}/member-invitations`, { token: owner.token })).body.items as { id: string }[];
    const invited = targets("member.invited");
    const revoked = targets("member.invitation-revoked");
    for (const id of revoked) expect(invited.has(id)).toBe(true);
    expect(new Set(pending.map((p) => p.id))).toEqual(new Set([...invited].filter((id) => !revoked.has(id))));

    const verdict = await api("GET", `/v1/organisations/${owner.orgId}/audit/verify`, { token: owner.token });
    expect(verdict.body).toMatchObject({ ok: true, entries: entries.length });
  } finally {
    second.process.kill("SIGTERM");
    await second.exited;
  }
}

describe("org audit entries commit with their changes", () => {
  it("on SQLite: a server killed mid-change leaves no change without its entry and no entry without its change", async () => {
    await crashAndCheck({});
  }, 240_000);

  it("on Postgres: the same, in a schema of its own", async () => {
    const databaseUrl = await requirePostgres();
    if (!databaseUrl) return;
    const schema = `parley_crash_${randomBytes(5).toString("hex")}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      await admin.end();
    });
    const url = new URL(databaseUrl);
    url.searchParams.set("options", `-c search_path=${schema}`);
    await crashAndCheck({ DATABASE_URL: url.toString() });
  }, 240_000);

  it("rolls the change back when its audit entry cannot be written (SQLite, a trigger refusing appends)", async () => {
    const server = await startTestServer();
    cleanups.push(() => server.cleanup());
    const api = apiClient(server.httpUrl);
    const owner = await signUp(api, "rita@rollback.example", "Rollback");
    const key = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, body: { name: "kept", scopes: ["conversations:read"] } });
    expect(key.status).toBe(201);
    const invited = await api("POST", `/v1/organisations/${owner.orgId}/members`, { token: owner.token, body: { email: "kept@rollback.example", role: "member" } });
    expect(invited.status).toBe(202);
    const before = await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 100);

    const db = new Database(path.join(server.dataDir, "directory.db"));
    db.pragma("busy_timeout = 5000");
    db.exec("CREATE TRIGGER refuse_org_audit BEFORE INSERT ON org_audit_entries BEGIN SELECT RAISE(ABORT, 'audit refused'); END");
    try {
      const created = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, body: { name: "never", scopes: ["conversations:read"] } });
      expect(created.status).toBeGreaterThanOrEqual(500);
      const revoked = await api("DELETE", `/v1/organisations/${owner.orgId}/api-keys/${key.body.id as string}`, { token: owner.token });
      expect(revoked.status).toBeGreaterThanOrEqual(500);
      const id = (invited.body.invitation as { id: string }).id;
      const revokedInvitation = await api("DELETE", `/v1/organisations/${owner.orgId}/member-invitations/${id}`, { token: owner.token });
      expect(revokedInvitation.status).toBeGreaterThanOrEqual(500);
      const another = await api("POST", `/v1/organisations/${owner.orgId}/members`, { token: owner.token, body: { email: "never@rollback.example", role: "member" } });
      expect(another.status).toBeGreaterThanOrEqual(500);
    } finally {
      db.exec("DROP TRIGGER refuse_org_audit");
      db.close();
    }
    // Nothing changed: the same keys (the first still live), the same pending invitation, the same chain.
    const keys = (await api("GET", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token })).body.items as { id: string; name: string; revokedAt: number | null }[];
    expect(keys.map((k) => [k.name, k.revokedAt])).toEqual([["kept", null]]);
    const pending = (await api("GET", `/v1/organisations/${owner.orgId}/member-invitations`, { token: owner.token })).body.items as { email: string }[];
    expect(pending.map((p) => p.email)).toEqual(["kept@rollback.example"]);
    expect(await server.server.audit.log.readOrgAuditEntries(owner.orgId, 0, 100)).toEqual(before);
  }, 120_000);
});
