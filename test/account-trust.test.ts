// An account belongs to its person: tried as an admin of another organisation would. Joining
// an organisation needs the person's consent; nobody acts on an account through an organisation
// it is not in; only owners manage owners; no refusal names another organisation.

import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import * as Y from "yjs";
import { ErrorCode } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
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

describe("finding 8: an invitation link proves control of a mailbox, nothing more", () => {
  let helpdesk: SignedUp;
  let conversation: string;
  beforeAll(async () => {
    helpdesk = await signUp(api, "desk@helpdesk8.example", "Helpdesk 8");
    const created = await api("POST", "/v1/conversations", { token: helpdesk.token, body: { title: "Pump 8" } });
    conversation = created.body.id as string;
  });

  const invite = async (email: string): Promise<string> => {
    const sent = await api("POST", `/v1/conversations/${conversation}/invitations`, { token: helpdesk.token, body: { email } });
    expect(sent.status).toBe(201);
    const mail = await sink.waitFor((m) => m.to.includes(email) && m.subject.includes("Pump 8"));
    const match = /(http:\/\/\S+\/invite\/[A-Za-z0-9_-]+)/.exec(mail.text);
    if (!match) throw new Error(`no link in: ${mail.text}`);
    return new URL(match[1]).pathname;
  };

  it("for an account with a password and two-factor, opens the invited conversation and nothing of the account", async () => {
    const owner = await signUp(api, "tara@totp-owner.example", "Tara Corp");
    const enrol = await api("POST", "/v1/auth/2fa/enrol", { token: owner.token });
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret as string) });
    expect((await api("POST", "/v1/auth/2fa/verify", { token: owner.token, body: { code: totp.generate() } })).status).toBe(200);
    const own = await api("POST", "/v1/conversations", { token: owner.token, body: { title: "Tara internal" } });
    const ownConversation = own.body.id as string;

    const link = await invite("tara@totp-owner.example");
    const opened = await api("POST", link, { body: {} });
    expect(opened.status).toBe(200);
    expect(opened.body.scope).toBe("conversation");
    const token = opened.body.accessToken as string;

    // Nothing of the account's own organisation: no API keys, no members, no settings, no events.
    const key = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token, body: { name: "stolen", scopes: ["conversations:write"] } });
    expect([key.status, key.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    expect((await api("GET", `/v1/organisations/${owner.orgId}/members`, { token })).status).toBe(403);
    expect((await api("PATCH", `/v1/organisations/${owner.orgId}`, { token, body: { name: "Owned" } })).status).toBe(403);
    expect((await api("GET", "/v1/conversations", { token })).status).toBe(403);
    expect((await api("GET", `/v1/conversations/${ownConversation}`, { token })).status).toBe(404);
    expect((await api("POST", "/v1/auth/2fa/disable", { token, body: {} })).status).toBe(403);
    const me = await api("GET", "/v1/me", { token });
    expect(me.body).not.toHaveProperty("memberships");
    const stream = await fetch(`${server.httpUrl}/v1/events/stream`, { headers: { authorization: `Bearer ${token}` } });
    expect(stream.status).toBe(403);
    await stream.body?.cancel();

    // The invited conversation works, over HTTP and on the socket; the account's own does not.
    expect((await api("POST", `/v1/conversations/${conversation}/messages`, { token, body: { text: "on my way" } })).status).toBe(201);
    expect((await api("GET", `/v1/conversations/${conversation}/messages`, { token })).status).toBe(200);
    const socket = await RawClient.authenticated(server.url, token);
    socket.control({ type: "join", conversation });
    await socket.waitForControl("joined");
    socket.control({ type: "join", conversation: ownConversation });
    expect(await socket.waitForControl("error", (m) => m.conversation === ownConversation)).toMatchObject({ code: ErrorCode.Forbidden });
    socket.close();

    // Refreshing keeps the scope.
    const refreshed = await api("POST", "/v1/auth/refresh", { body: { refreshToken: opened.body.refreshToken } });
    expect(refreshed.status).toBe(200);
    const again = await api("POST", `/v1/organisations/${owner.orgId}/api-keys`, { token: refreshed.body.accessToken as string, body: { name: "x", scopes: ["conversations:read"] } });
    expect(again.status).toBe(403);
    // The account itself still needs its password and second factor.
    const asked = (await login("tara@totp-owner.example")).body.error;
    expect(asked?.code).toBe(ErrorCode.TwoFactorRequired);
    expect(asked?.secondFactors).toEqual(["authenticator-app", "recovery-code"]);
  });

  it("for an address with no account, creates one and signs it in as before", async () => {
    const link = await invite("new.supplier@fresh8.example");
    const opened = await api("POST", link, { body: {} });
    expect([opened.status, opened.body.scope]).toEqual([200, "account"]);
    const me = await api("GET", "/v1/me", { token: opened.body.accessToken as string });
    expect((me.body.memberships as unknown[]).length).toBe(1);
  });

  it("replaying a used link does not flood the mailbox with device codes", async () => {
    const link = await invite("flood@victim8.example");
    expect((await api("POST", link, { body: {} })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await api("POST", link, { body: {} })).status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.at(-1)).toBe(429);
    // A barrier: one more mail to the same address proves the sink has seen everything before it.
    await api("POST", `/v1/organisations/${helpdesk.orgId}/members`, { token: helpdesk.token, body: { email: "flood@victim8.example" } });
    await sink.waitFor((m) => m.to.includes("flood@victim8.example") && m.subject.includes("join"));
    const codes = sink.messages.filter((m) => m.to.includes("flood@victim8.example") && m.subject.includes("sign-in code"));
    expect(codes.length).toBeLessThanOrEqual(3);
  });
});

describe("finding 10: no enumeration", () => {
  it("another organisation's invitation id answers exactly like a missing one", async () => {
    const starter = await signUp(api, "sy@starter10.example", "Starter 10");
    const outsider = await signUp(api, "oz@outsider10.example", "Outsider 10");
    const partner = await signUp(api, "pia@partner10.example", "Partner 10");
    const created = await api("POST", "/v1/conversations", { token: starter.token, body: { title: "Ten", participants: [{ organisation: partner.orgId }] } });
    const sent = await api("POST", `/v1/conversations/${created.body.id as string}/invitations`, { token: starter.token, body: { email: "guest@ten.example" } });
    const id = sent.body.id as string;
    const key = await api("POST", `/v1/organisations/${outsider.orgId}/api-keys`, { token: outsider.token, body: { name: "ro", scopes: ["conversations:read"] } });
    for (const token of [outsider.token, partner.token, key.body.key as string]) {
      const foreign = await api("DELETE", `/v1/invitations/${id}`, { token });
      const missing = await api("DELETE", "/v1/invitations/inv_0123456789abcdef0123456789abcdef", { token });
      expect([foreign.status, foreign.body]).toEqual([missing.status, missing.body]);
      expect(foreign.status).toBe(404);
    }
    expect((await api("DELETE", `/v1/invitations/${id}`, { token: starter.token })).status).toBe(204);
  });
});

describe("finding 10: awareness ids belong to their owner beyond a disconnect", () => {
  const room = "c-aware-ten";
  const join = async (user: string, org: string) => {
    const token = await server.token({ user, org, conversations: { [room]: "writer" } });
    const client = await RawClient.authenticated(server.url, token);
    client.control({ type: "join", conversation: room });
    await client.waitForControl("joined");
    return client;
  };
  const stateOf = (update: Uint8Array, clientId: number) => {
    const view = new Awareness(new Y.Doc());
    applyAwarenessUpdate(view, update, "test");
    return view.getStates().get(clientId);
  };
  const isAwareness = (frame: { kind: string; message?: { type: string } }) => frame.kind === "doc" && frame.message?.type === "awareness";

  it("nobody claims a disconnected owner's id, and the owner gets it back", async () => {
    const watcher = await join("wat", "org-watch-ten");
    const ownerDoc = new Y.Doc();
    const ownerAwareness = new Awareness(ownerDoc);
    const id = ownerDoc.clientID;
    const alice = await join("alice", "org-a-ten");
    ownerAwareness.setLocalState({ name: "alice" });
    alice.doc(room, { type: "awareness", update: encodeAwarenessUpdate(ownerAwareness, [id]) });
    await watcher.waitFor((f) => isAwareness(f) && stateOf((f as { message: { update: Uint8Array } }).message.update, id)?.name === "alice");
    alice.close();
    await watcher.waitFor((f) => isAwareness(f) && stateOf((f as { message: { update: Uint8Array } }).message.update, id) === undefined);

    // Mallory, another identity, announces alice's id while alice is away: refused, not relayed.
    const mallory = await join("mallory", "org-m-ten");
    const squat = new Awareness(new Y.Doc());
    squat.clientID = id;
    squat.setLocalState({ name: "mallory" });
    mallory.doc(room, { type: "awareness", update: encodeAwarenessUpdate(squat, [id]) });
    expect(await mallory.waitForControl("error")).toMatchObject({ code: ErrorCode.Forbidden, request: "awareness" });

    // Alice comes back with the same id: her state goes through.
    const again = await join("alice", "org-a-ten");
    ownerAwareness.setLocalState({ name: "alice again" });
    again.doc(room, { type: "awareness", update: encodeAwarenessUpdate(ownerAwareness, [id]) });
    await watcher.waitFor((f) => isAwareness(f) && stateOf((f as { message: { update: Uint8Array } }).message.update, id)?.name === "alice again");
    const seen = watcher.frames.filter(isAwareness).map((f) => stateOf((f as { message: { update: Uint8Array } }).message.update, id)?.name);
    expect(seen).not.toContain("mallory");
    for (const client of [watcher, mallory, again]) client.close();
  });
});
