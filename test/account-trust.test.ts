// An account belongs to its person: tried as an admin of another organisation would. Joining
// an organisation needs the person's consent; nobody acts on an account through an organisation
// it is not in; only owners manage owners; no refusal names another organisation.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { joinOrganisation, type SignedUp, signUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";

let sink: SmtpSink;
let server: TestServer;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  sink = await startSmtpSink();
  server = await startTestServer({ env: { PARLEY_SMTP_URL: `smtp://127.0.0.1:${sink.port}` } });
  api = apiClient(server.httpUrl);
});
afterAll(async () => {
  await server.cleanup();
  await sink.close();
});

const memberships = async (token: string) => ((await api("GET", "/v1/me", { token })).body.memberships as { orgId: string }[]).map((m) => m.orgId);
const login = (email: string, organisation?: string) => api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD, organisation } });

describe("finding 6: an admin of another organisation cannot take over or destroy an account", () => {
  let victim: SignedUp;
  let attacker: SignedUp;
  beforeAll(async () => {
    victim = await signUp(api, "vic@victim.example", "Victim Ltd");
    attacker = await signUp(api, "mal@attacker.example", "Attacker Ltd");
  });

  it("adding an existing account by email only invites it: nothing changes until the person accepts", async () => {
    const added = await api("POST", `/v1/organisations/${attacker.orgId}/members`, { token: attacker.token, body: { email: "vic@victim.example", role: "admin" } });
    expect(added.status).toBe(202);
    expect(await memberships(victim.token)).toEqual([victim.orgId]);
    expect((await login("vic@victim.example", attacker.orgId)).status).toBe(401);
    // Not a member: the account does not exist for the attacker's organisation.
    const erase = await api("DELETE", `/v1/users/${victim.userId}`, { token: attacker.token });
    expect([erase.status, erase.body.error?.code]).toEqual([404, ErrorCode.NotFound]);
    expect((await login("vic@victim.example")).status).toBe(200);
    // The person is told, and decides.
    const mail = await sink.waitFor((m) => m.to.includes("vic@victim.example") && m.subject.includes("Attacker Ltd"));
    expect(mail.text).toContain("Nothing changes unless you accept");
  });

  it("an account that belongs to another organisation too cannot be deleted by an owner of one of them", async () => {
    const pending = await api("GET", "/v1/me/member-invitations", { token: victim.token });
    const invitation = (pending.body.items as { id: string; organisation: { id: string } }[]).find((i) => i.organisation.id === attacker.orgId);
    expect(invitation).toBeDefined();
    // Somebody else cannot accept it for the person.
    const bystander = await signUp(api, "bob@bystander.example", "Bystander");
    expect((await api("POST", `/v1/me/member-invitations/${invitation?.id}/accept`, { token: bystander.token })).status).toBe(404);
    expect((await api("POST", `/v1/me/member-invitations/${invitation?.id}/accept`, { token: victim.token })).status).toBe(200);
    expect(await memberships(victim.token)).toEqual([victim.orgId, attacker.orgId]);
    // Accepted once; a second accept finds nothing.
    expect((await api("POST", `/v1/me/member-invitations/${invitation?.id}/accept`, { token: victim.token })).status).toBe(404);

    const erase = await api("DELETE", `/v1/users/${victim.userId}`, { token: attacker.token });
    expect([erase.status, erase.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    expect(JSON.stringify(erase.body)).not.toContain(victim.orgId);
    expect((await login("vic@victim.example")).status).toBe(200);
    // Removing the member from their own organisation is all an organisation can do.
    expect((await api("DELETE", `/v1/organisations/${attacker.orgId}/members/${victim.userId}`, { token: attacker.token })).status).toBe(204);
    expect(await memberships(victim.token)).toEqual([victim.orgId]);
  });

  it("the last-owner refusal names no organisation", async () => {
    const colleague = await signUp(api, "cat@victim-staff.example", "Cat's own");
    await joinOrganisation(api, { orgId: victim.orgId, adminToken: victim.token }, { email: "cat@victim-staff.example", token: colleague.token });
    const other = await signUp(api, "ops@other.example", "Other Ltd");
    await joinOrganisation(api, { orgId: other.orgId, adminToken: other.token }, { email: "vic@victim.example", token: victim.token });
    const asOther = (await login("vic@victim.example", other.orgId)).body.accessToken as string;
    const self = await api("DELETE", `/v1/users/${victim.userId}`, { token: asOther });
    expect(self.status).toBe(400);
    expect(self.body.error?.message).toContain("last owner");
    expect(JSON.stringify(self.body)).not.toContain(victim.orgId);
    expect(JSON.stringify(self.body)).not.toContain("Victim Ltd");
  });

  it("a revoked or foreign membership invitation answers like a missing one", async () => {
    const invited = await api("POST", `/v1/organisations/${attacker.orgId}/members`, { token: attacker.token, body: { email: "nobody-yet@new.example" } });
    expect(invited.status).toBe(202);
    const id = (invited.body.invitation as { id: string }).id;
    const foreign = await api("DELETE", `/v1/organisations/${victim.orgId}/member-invitations/${id}`, { token: victim.token });
    const missing = await api("DELETE", `/v1/organisations/${victim.orgId}/member-invitations/minv_nothing`, { token: victim.token });
    expect([foreign.status, foreign.body.error]).toEqual([missing.status, missing.body.error]);
    expect((await api("DELETE", `/v1/organisations/${attacker.orgId}/member-invitations/${id}`, { token: attacker.token })).status).toBe(204);
    // The address signs up later: the revoked invitation is not offered.
    const late = await signUp(api, "nobody-yet@new.example", "New");
    expect((await api("GET", "/v1/me/member-invitations", { token: late.token })).body.items).toEqual([]);
  });
});

describe("finding 7: only owners grant, change or remove the owner role", () => {
  let owner: SignedUp;
  let adminToken: string;
  let admin: SignedUp;
  beforeAll(async () => {
    owner = await signUp(api, "olga@owned.example", "Owned");
    admin = await signUp(api, "adam@owned-staff.example", "Adam's own");
    await joinOrganisation(api, { orgId: owner.orgId, adminToken: owner.token }, { email: "adam@owned-staff.example", token: admin.token }, "admin");
    adminToken = (await login("adam@owned-staff.example", owner.orgId)).body.accessToken as string;
  });

  it("an admin cannot demote, remove or make an owner", async () => {
    const demote = await api("POST", `/v1/organisations/${owner.orgId}/members`, { token: adminToken, body: { email: "olga@owned.example", role: "member" } });
    expect([demote.status, demote.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const patch = await api("PATCH", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: adminToken, body: { role: "admin" } });
    expect([patch.status, patch.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const remove = await api("DELETE", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: adminToken });
    expect([remove.status, remove.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const promoteSelf = await api("PATCH", `/v1/organisations/${owner.orgId}/members/${admin.userId}`, { token: adminToken, body: { role: "owner" } });
    expect([promoteSelf.status, promoteSelf.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const inviteOwner = await api("POST", `/v1/organisations/${owner.orgId}/members`, { token: adminToken, body: { email: "friend@owned.example", role: "owner" } });
    expect([inviteOwner.status, inviteOwner.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const members = (await api("GET", `/v1/organisations/${owner.orgId}/members`, { token: owner.token })).body.items as { userId: string; role: string }[];
    expect(members.find((m) => m.userId === owner.userId)?.role).toBe("owner");
    expect(members.find((m) => m.userId === admin.userId)?.role).toBe("admin");
  });

  it("an API key cannot change roles, and the last owner cannot be demoted or removed", async () => {
    const key = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: owner.token, body: { name: "x", scopes: ["conversations:write"] } });
    const byKey = await api("PATCH", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: key.body.key as string, body: { role: "member" } });
    expect(byKey.status).toBe(403);
    const selfDemote = await api("PATCH", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: owner.token, body: { role: "admin" } });
    expect(selfDemote.status).toBe(400);
    const selfRemove = await api("DELETE", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: owner.token });
    expect(selfRemove.status).toBe(400);
    // An owner may hand ownership on; then the former owner may step down.
    expect((await api("PATCH", `/v1/organisations/${owner.orgId}/members/${admin.userId}`, { token: owner.token, body: { role: "owner" } })).status).toBe(200);
    expect((await api("PATCH", `/v1/organisations/${owner.orgId}/members/${owner.userId}`, { token: owner.token, body: { role: "admin" } })).status).toBe(200);
  });
});
