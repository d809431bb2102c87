// Conversation access changes commit with their audit entries: when the organisation audit append
// fails (a trigger refuses it), an invitation is neither created (nor mailed), revoked nor
// redeemed, and a participant organisation is neither added nor removed. On SQLite and Postgres.

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AUDIT_BACKENDS, type RefusableAuditServer, serverPerSuite } from "./helpers/audit-refusal.ts";
import { type SignedUp, signUp } from "./helpers/sign-up.ts";

describe.each(AUDIT_BACKENDS)("conversation access changes whose audit entry cannot be written do not happen ($name)", (backend) => {
  const suite = serverPerSuite(backend);
  let running: RefusableAuditServer | null = null;
  let api: RefusableAuditServer["api"];
  let desk: SignedUp;
  let supplier: SignedUp;
  let conversation: string;

  beforeAll(async () => {
    running = suite();
    if (!running) return;
    api = running.api;
    desk = await signUp(api, "dana@desk.example", "Desk");
    supplier = await signUp(api, "sam@supplier.example", "Supplier");
    conversation = (await api("POST", "/v1/conversations", { token: desk.token, body: { title: "Pump" } })).body.id as string;
  });


  const chain = async (who: SignedUp) => (await running?.server.server.audit.log.readOrgAuditEntries(who.orgId, 0, 1000)) ?? [];
  const invitations = async () => (await api("GET", `/v1/conversations/${conversation}/invitations`, { token: desk.token })).body.items as { id: string; email: string; revokedAt: number | null; userId: string | null }[];
  const participants = async () => (await running?.count("conversation_orgs", "conversation_id = ?", [conversation])) ?? 0;
  /** The invitation link mailed to `email` (the outbox's .eml files, quoted-printable soft breaks undone). */
  async function mailedLink(email: string): Promise<string | null> {
    const outbox = path.join(running?.server.dataDir ?? "", "outbox");
    for (const name of await readdir(outbox).catch(() => [] as string[])) {
      const text = (await readFile(path.join(outbox, name), "utf8")).replace(/=\r?\n/g, "");
      if (!text.includes(email)) continue;
      const match = /\/invite\/([A-Za-z0-9_-]+)/.exec(text);
      if (match) return `/invite/${match[1]}`;
    }
    return null;
  }

  it("an invitation is not created, not mailed, not revoked and not redeemed", async (context) => {
    if (!running) return context.skip();
    const before = await chain(desk);
    const refused = await running.whileRefused(() => api("POST", `/v1/conversations/${conversation}/invitations`, { token: desk.token, body: { email: "never@invitee.example" } }));
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(await invitations()).toEqual([]);
    expect(await mailedLink("never@invitee.example")).toBeNull();
    expect(await chain(desk)).toEqual(before);

    const sent = await api("POST", `/v1/conversations/${conversation}/invitations`, { token: desk.token, body: { email: "ivy@invitee.example" } });
    expect(sent.status).toBe(201);
    const link = await mailedLink("ivy@invitee.example");
    expect(link).not.toBeNull();

    // Redeeming the link: refused, so it stays unbound and opens nothing.
    const redeemed = await running.whileRefused(() => api("POST", link as string, { body: {} }));
    expect(redeemed.status).toBeGreaterThanOrEqual(500);
    expect((await invitations())[0].userId).toBeNull();
    expect(await running.count("conversation_people", "conversation_id = ?", [conversation])).toBe(0);
    const opened = await api("POST", link as string, { body: {} });
    expect(opened.status).toBe(200);

    // Revoking it: refused, so the link still works and the person keeps access.
    const id = (await invitations())[0].id;
    expect((await running.whileRefused(() => api("DELETE", `/v1/invitations/${id}`, { token: desk.token }))).status).toBeGreaterThanOrEqual(500);
    expect((await invitations())[0].revokedAt).toBeNull();
    expect(await running.count("conversation_people", "conversation_id = ?", [conversation])).toBe(1);
    expect((await chain(desk)).map((e) => e.action)).not.toContain("invitation.revoked");
    expect((await chain(desk)).map((e) => e.action)).toEqual(expect.arrayContaining(["invitation.sent", "invitation.used"]));
  });

  it("a participant organisation is neither added nor removed", async (context) => {
    if (!running) return context.skip();
    const count = await participants();
    const add = () => api("POST", `/v1/conversations/${conversation}/participants`, { token: desk.token, body: { organisation: supplier.orgId } });
    expect((await running.whileRefused(add)).status).toBeGreaterThanOrEqual(500);
    expect(await participants()).toBe(count);
    expect((await api("GET", `/v1/conversations/${conversation}`, { token: supplier.token })).status).toBe(404);
    expect((await chain(supplier)).map((e) => e.action)).not.toContain("participant.added");

    expect((await add()).status).toBe(200);
    const removed = await running.whileRefused(() => api("DELETE", `/v1/conversations/${conversation}/participants/${supplier.orgId}`, { token: desk.token }));
    expect(removed.status).toBeGreaterThanOrEqual(500);
    expect(await participants()).toBe(count + 1);
    expect((await api("GET", `/v1/conversations/${conversation}`, { token: supplier.token })).status).toBe(200);
    expect((await chain(desk)).map((e) => e.action)).not.toContain("participant.removed");
  });
});
