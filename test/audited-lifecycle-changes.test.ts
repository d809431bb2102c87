// Legal holds, person erasure and conversation destruction and their audit entries: a hold is
// placed or lifted with its entry or not at all, a person is erased with the entry in their
// organisation's chain or not at all; a destruction starts only with its "destroying" entries
// (committed with the shared ledger line) and ends with its "destroyed" entries (committed with
// the removal of the directory record): refused at the start, nothing is destroyed; refused at the
// end, the next start finishes it and records it. On SQLite and Postgres.

import { beforeAll, describe, expect, it } from "vitest";
import { runParley } from "./helpers/parley-cli.ts";
import { AUDIT_BACKENDS, type RefusableAuditServer, serverPerSuite } from "./helpers/audit-refusal.ts";
import { type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";

describe.each(AUDIT_BACKENDS)("lifecycle changes whose audit entry cannot be written do not happen ($name)", (backend) => {
  const suite = serverPerSuite(backend);
  let running: RefusableAuditServer | null = null;
  const api: RefusableAuditServer["api"] = (...request) => (running as RefusableAuditServer).api(...request);
  beforeAll(() => {
    running = suite();
  });

  const chain = async (who: SignedUp) => (await running?.server.server.audit.log.readOrgAuditEntries(who.orgId, 0, 1000)) ?? [];
  const startConversation = async (who: SignedUp, title: string) => {
    const id = (await api("POST", "/v1/conversations", { token: who.token, body: { title } })).body.id as string;
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: who.token, body: { text: `secret of ${title}` } })).status).toBe(201);
    return id;
  };

  it("a legal hold is neither placed nor lifted", async (context) => {
    if (!running) return context.skip();
    const desk = await signUp(api, "hana@hold.example", "Hold");
    const id = await startConversation(desk, "Held");
    const holds = async () => (await api("GET", `/v1/conversations/${id}/legal-hold`, { token: desk.token })).body.items as unknown[];
    const place = () => api("PUT", `/v1/conversations/${id}/legal-hold`, { token: desk.token, body: { reason: "litigation" } });
    expect((await running.whileRefused(place)).status).toBeGreaterThanOrEqual(500);
    expect(await holds()).toEqual([]);
    expect((await place()).status).toBe(200);
    expect((await running.whileRefused(() => api("DELETE", `/v1/conversations/${id}/legal-hold`, { token: desk.token }))).status).toBeGreaterThanOrEqual(500);
    expect(await holds()).toHaveLength(1);
    const actions = (await chain(desk)).map((e) => e.action);
    expect(actions.filter((a) => a === "legal-hold.placed")).toHaveLength(1);
    expect(actions).not.toContain("legal-hold.lifted");
  });

  it("a person is not erased", async (context) => {
    if (!running) return context.skip();
    const erin = await signUp(api, "erin@erase.example", "Erase");
    const refused = await running.whileRefused(() => api("DELETE", `/v1/users/${erin.userId}`, { token: erin.token }));
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect((await api("POST", "/v1/auth/login", { body: { email: "erin@erase.example", password: TEST_PASSWORD } })).status).toBe(200);
    expect(await running.count("deletion_ledger", "id = ?", [erin.userId])).toBe(0);
    expect((await chain(erin)).map((e) => e.action)).not.toContain("person.deleted");
  });

  it("a destruction refused at its start destroys nothing; refused at its end, the next start finishes and records it", async (context) => {
    if (!running) return context.skip();
    const desk = await signUp(api, "dora@destroy.example", "Destroy");
    const store = () => running?.server.server.store;
    const scopes = async (id: string) => (await chain(desk)).filter((e) => e.target === id).map((e) => e.details.scope);

    // Refused at the start: the side is deleted (with its entry), but nothing is destroyed.
    const first = await startConversation(desk, "First");
    const refusedStart = await running.whileRefused(() => api("DELETE", `/v1/conversations/${first}`, { token: desk.token }), '%"scope":"destroying"%');
    expect(refusedStart.status).toBe(503);
    expect((refusedStart.body as { error: { message: string } }).error.message).toContain("your side is deleted, but destroying the conversation did not finish");
    expect(await running.count("deletion_ledger", "id = ?", [first])).toBe(0);
    expect(await running.count("conversation_records", "id = ?", [first])).toBe(1);
    expect((await store()?.readEntries(first, 0, 10))?.length).toBeGreaterThan(0);
    expect(await scopes(first)).toEqual(["side"]);

    // Refused at the end: the content is gone, the record stays (so a restart sees it unfinished).
    const second = await startConversation(desk, "Second");
    const refusedEnd = await running.whileRefused(() => api("DELETE", `/v1/conversations/${second}`, { token: desk.token }), '%"scope":"destroyed"%');
    expect(refusedEnd.status).toBe(503);
    expect(await running.count("deletion_ledger", "id = ?", [second])).toBe(1);
    expect(await running.count("conversation_records", "id = ?", [second])).toBe(1);
    expect(await scopes(second)).toEqual(["side", "destroying"]);

    await running.server.restart();
    expect(await running.count("conversation_records", "id = ?", [second])).toBe(0);
    expect(await store()?.readEntries(second, 0, 10).catch(() => [])).toEqual([]);
    expect(await scopes(second)).toEqual(["side", "destroying", "destroyed"]);
    const [finished] = (await chain(desk)).filter((e) => e.target === second && e.details.scope === "destroyed");
    expect(finished).toMatchObject({ actor: "system", details: { replayed: true } });
  }, 120_000);

  it("a destruction refused at its end and finished by `parley ledger replay` (no server running) is recorded as destroyed", async (context) => {
    if (!running) return context.skip();
    const desk = await signUp(api, "otto@offline.example", "Offline Replay");
    const scopes = async (id: string) => (await chain(desk)).filter((e) => e.target === id).map((e) => e.details.scope);
    const id = await startConversation(desk, "Offline");
    const refusedEnd = await running.whileRefused(() => api("DELETE", `/v1/conversations/${id}`, { token: desk.token }), '%"scope":"destroyed"%');
    expect(refusedEnd.status).toBe(503);
    expect(await scopes(id)).toEqual(["side", "destroying"]);

    await running.server.stop();
    const replayArgs = ["ledger", "replay", "--data-dir", running.server.dataDir];
    // Its entry refused offline too: the replay fails, saying so, and the record stays for the next one.
    const refusedReplay = await running.whileRefused(() => runParley(replayArgs, running?.env), '%"scope":"destroyed"%');
    expect(refusedReplay.code).not.toBe(0);
    expect(refusedReplay.stderr).toMatch(/^parley: /m);
    expect(await running.count("conversation_records", "id = ?", [id])).toBe(1);
    const replay = await runParley(replayArgs, running.env);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(`destroyed again 1 conversation(s) [${id}]`);
    await running.server.restart();
    expect(await running.count("conversation_records", "id = ?", [id])).toBe(0);
    expect(await scopes(id)).toEqual(["side", "destroying", "destroyed"]);
    const [finished] = (await chain(desk)).filter((e) => e.target === id && e.details.scope === "destroyed");
    expect(finished).toMatchObject({ actor: "system", details: { replayed: true } });
    const verdict = await api("GET", `/v1/organisations/${desk.orgId}/audit/verify`, { token: desk.token });
    expect(verdict.body).toMatchObject({ ok: true });
  }, 120_000);
});
