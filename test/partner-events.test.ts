// Partner events end to end: what happens in a conversation becomes typed events in the stream
// of every organisation taking part (and of no other); consumers page them, follow them over
// Server-Sent Events and over the socket (SDK iterator), and resume from their cursor across a
// server restart with nothing missed or repeated; a cursor past retention gets a clear error.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type EventFeed, ParleyClient, type WebSocketConstructor } from "../client-sdk/index.ts";
import { appendMessage, ErrorCode, type ParleyEvent, PROTOCOL_VERSION } from "../protocol/index.ts";
import { apiClient } from "./helpers/http-client.ts";
import { allEvents as allEventsOf, PARTNER_PASSWORD, type PartnerOrg, signUpWithKey } from "./helpers/partner-orgs.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { joinOrganisation, signIn } from "./helpers/sign-up.ts";
import { followSse } from "./helpers/sse-client.ts";
import { waitUntil } from "./helpers/wait.ts";

const PASSWORD = PARTNER_PASSWORD;
let clock = Date.now();
let server: TestServer;
let api: ReturnType<typeof apiClient>;
const clients: ParleyClient[] = [];

type Org = PartnerOrg;
const signUp = (email: string, organisation: string) => signUpWithKey(api, email, organisation);
const allEvents = (credential: string, after = 0) => allEventsOf(api, credential, after);

function sdk(credential: string): ParleyClient {
  const client = new ParleyClient({ url: server.url, token: async () => credential, WebSocket: WebSocket as unknown as WebSocketConstructor });
  clients.push(client);
  return client;
}

function collect(feed: EventFeed): { events: ParleyEvent[]; error: unknown; done: Promise<void> } {
  const result = { events: [] as ParleyEvent[], error: undefined as unknown, done: Promise.resolve() };
  result.done = (async () => {
    try {
      for await (const event of feed) result.events.push(event);
    } catch (error) {
      result.error = error;
    }
  })();
  return result;
}

async function post(credential: string, conversation: string, text: string): Promise<void> {
  const response = await api("POST", `/v1/conversations/${conversation}/messages`, { token: credential, body: { text } });
  expect(response.status).toBe(201);
}

beforeAll(async () => {
  server = await startTestServer({ env: { PARLEY_EVENT_DEBOUNCE_MS: "20", PARLEY_EVENT_NOTES_QUIET_MS: "100" }, now: () => clock });
  // A fresh connection per request: after an in-process restart a kept-alive connection would
  // still reach the stopped server instance (uWS keeps serving open connections after close).
  const call = apiClient(server.httpUrl);
  api = (method, path, options = {}) => call(method, path, { ...options, headers: { connection: "close", ...options.headers } });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server.cleanup();
});

describe("partner events", () => {
  let helpdesk: Org;
  let supplier: Org;
  let outsider: Org;
  let conversation: string;

  it("records what happens in a conversation for every organisation taking part, and for no other", async () => {
    helpdesk = await signUp("ann@helpdesk.example", "Helpdesk BV");
    supplier = await signUp("sam@supplier.example", "Supplier BV");
    outsider = await signUp("eve@outsider.example", "Outsider BV");

    const created = await api("POST", "/v1/conversations", {
      token: helpdesk.key,
      body: { title: "Broken boiler", externalRef: "TICKET-42", participants: [{ organisation: supplier.orgId }], invitations: [{ email: "pat@elsewhere.example" }] },
    });
    expect(created.status).toBe(201);
    conversation = created.body.id as string;
    await post(helpdesk.key, conversation, "The boiler in room 4 is broken.");

    // A person writes over the socket (the SDK): the message is found in the document after commit.
    const writer = sdk(supplier.token);
    const handle = writer.open(conversation);
    await handle.whenSynced();
    appendMessage(handle.doc, { id: "msg-from-socket", authorUser: supplier.userId, authorOrg: supplier.orgId, text: "On my way.", createdAt: clock });
    handle.doc.getText("notes").insert(0, "Spare part: valve 22mm");
    await waitUntil(async () => (await allEvents(helpdesk.key)).some((e) => e.type === "notes.changed"));
    handle.close();

    expect((await api("POST", `/v1/conversations/${conversation}/close`, { token: helpdesk.token })).status).toBe(200);
    expect((await api("POST", `/v1/conversations/${conversation}/reopen`, { token: helpdesk.token })).status).toBe(200);

    const mine = await allEvents(helpdesk.key);
    expect(mine.map((e) => e.type)).toEqual([
      "conversation.created",
      "invitation.sent",
      "message.created",
      "message.created",
      "notes.changed",
      "conversation.closed",
      "conversation.reopened",
    ]);
    // Strictly increasing; not necessarily from 1: security notices (opt-in, README › Security
    // notices) take cursors in the same stream without being delivered here.
    expect(mine.map((e) => e.cursor)).toEqual([...mine.map((e) => e.cursor)].sort((a, b) => a - b));
    expect(new Set(mine.map((e) => e.cursor)).size).toBe(7);
    expect(mine.every((e) => e.conversation === conversation)).toBe(true);
    const created0 = mine[0];
    expect(created0.type === "conversation.created" && created0.data).toMatchObject({ title: "Broken boiler", externalRef: "TICKET-42", startedBy: helpdesk.orgId });
    const socketMessage = mine[3];
    expect(socketMessage.type === "message.created" && socketMessage.data.message).toMatchObject({
      id: "msg-from-socket",
      authorUser: supplier.userId,
      authorOrg: supplier.orgId,
      text: "On my way.",
    });
    const notes = mine[4];
    expect(notes.type === "notes.changed" && notes.data).toMatchObject({ text: "Spare part: valve 22mm", truncated: false });

    // The supplier takes part: the same events (same ids) in its own stream, except invitations,
    // which only the starting organisation may see.
    const theirs = await allEvents(supplier.key);
    expect(theirs.map((e) => e.id)).toEqual(mine.filter((e) => e.type !== "invitation.sent").map((e) => e.id));
    expect(theirs.map((e) => e.cursor)).toEqual([...theirs.map((e) => e.cursor)].sort((a, b) => a - b));
    expect(new Set(theirs.map((e) => e.cursor)).size).toBe(6);

    // The outsider takes no part: nothing.
    expect(await allEvents(outsider.key)).toEqual([]);
  });

  it("tells a removed participant it was removed, then tells it nothing more", async () => {
    const removed = await api("DELETE", `/v1/conversations/${conversation}/participants/${supplier.orgId}`, { token: helpdesk.token });
    expect(removed.status).toBe(204);
    await post(helpdesk.key, conversation, "Handled internally from now on.");
    await waitUntil(async () => (await allEvents(helpdesk.key)).at(-1)?.type === "message.created");
    const theirs = await allEvents(supplier.key);
    expect(theirs.at(-1)).toMatchObject({ type: "participant.removed", data: { organisation: supplier.orgId } });
    const added = await api("POST", `/v1/conversations/${conversation}/participants`, { token: helpdesk.token, body: { organisation: supplier.orgId } });
    expect(added.status).toBe(200);
    expect((await allEvents(supplier.key)).at(-1)).toMatchObject({ type: "participant.added", data: { organisation: supplier.orgId } });
  });

  it("lets API keys and admins follow events, but not members or other organisations' keys", async () => {
    const member = await signUp("mo@helpdesk-staff.example", "Staff");
    await joinOrganisation(api, { orgId: helpdesk.orgId, adminToken: helpdesk.token }, { email: "mo@helpdesk-staff.example", token: member.token });
    const login = await api("POST", "/v1/auth/login", { body: { email: "mo@helpdesk-staff.example", password: PASSWORD, organisation: helpdesk.orgId } });
    expect(login.status).toBe(200);
    const memberToken = login.body.accessToken as string;
    expect(member.orgId).not.toBe(helpdesk.orgId);
    const asMember = await api("GET", "/v1/events", { token: memberToken });
    expect([403]).toContain(asMember.status);
    expect((await api("GET", "/v1/events", { token: helpdesk.token })).status).toBe(200);
    const stream = await fetch(`${server.httpUrl}/v1/events/stream`, { headers: { authorization: `Bearer ${memberToken}` } });
    expect(stream.status).toBe(403);
    expect((await fetch(`${server.httpUrl}/v1/events/stream`)).status).toBe(401);

    const readOnly = await api("POST", `/v1/organisations/${helpdesk.orgId}/api-keys`, { token: helpdesk.token, body: { name: "reader", scopes: ["conversations:read"] } });
    expect((await api("GET", "/v1/events", { token: readOnly.body.key as string })).status).toBe(200);
  });

  it("never reports a message twice, also after a restart", async () => {
    const before = await allEvents(helpdesk.key);
    await server.restart();
    await post(helpdesk.key, conversation, "After the restart.");
    await waitUntil(async () => (await allEvents(helpdesk.key)).length === before.length + 1);
    const after = await allEvents(helpdesk.key);
    const ids = after.filter((e) => e.type === "message.created").map((e) => (e.type === "message.created" ? e.data.message.id : ""));
    expect(new Set(ids).size).toBe(ids.length);
    expect(after.at(-1)).toMatchObject({ type: "message.created", data: { message: { text: "After the restart." } } });
  });

  it("resumes SSE and SDK consumers from their cursor across a server restart, nothing missed or repeated", async () => {
    const start = (await api("GET", "/v1/events?limit=1", { token: helpdesk.key })).body.head as number;
    const sse = followSse(server.httpUrl, helpdesk.key, start);
    const feed = sdk(helpdesk.key).events({ after: start });
    const viaSdk = collect(feed);
    // An outsider follows too, from the beginning: it must see none of this.
    const outsiderSse = followSse(server.httpUrl, outsider.key, 0);

    for (let i = 0; i < 15; i++) await post(helpdesk.key, conversation, `before restart ${i}`);
    await sse.waitFor((events) => events.length >= 5);
    await server.restart();
    for (let i = 0; i < 15; i++) await post(helpdesk.key, conversation, `after restart ${i}`);
    await api("POST", `/v1/conversations/${conversation}/close`, { token: helpdesk.token });

    const expected = await (async () => {
      let events: ParleyEvent[] = [];
      await waitUntil(async () => {
        events = await allEvents(helpdesk.key, start);
        return events.length === 31;
      });
      return events;
    })();
    // Barrier: one more event, after all of the above. Both consumers read the stream in cursor
    // order, so once they have it, any duplicate or extra event before it would already be there.
    const marker = await api("POST", "/v1/conversations", { token: helpdesk.key, body: { title: "Marker" } });
    expect(marker.status).toBe(201);
    const isMarker = (e: ParleyEvent) => e.type === "conversation.created" && e.conversation === marker.body.id;
    await sse.waitFor((events) => events.some(isMarker));
    await waitUntil(() => viaSdk.events.some(isMarker));

    expect(sse.connections).toBeGreaterThanOrEqual(2);
    expect(sse.events.map((e) => e.id)).toEqual([...expected.map((e) => e.id), sse.events.find(isMarker)?.id]);
    expect(viaSdk.events.map((e) => e.id)).toEqual([...expected.map((e) => e.id), viaSdk.events.find(isMarker)?.id]);
    expect(feed.cursor).toBe(viaSdk.events.find(isMarker)?.cursor);
    expect(viaSdk.error).toBeUndefined();
    expect(outsiderSse.events).toEqual([]);
    await sse.stop();
    await outsiderSse.stop();
    feed.close();
    await viaSdk.done;
  });

  it("follows events over the raw socket protocol with an API key, and ends a stale subscription", async () => {
    const raw = await RawClient.connect(server.url);
    raw.control({ type: "auth", token: helpdesk.key, protocol: PROTOCOL_VERSION });
    await raw.waitForControl("auth-ok");
    raw.control({ type: "subscribe-events", subscription: "all", after: 0, types: ["conversation.created"] });
    const subscribed = await raw.waitFor((f) => f.kind === "control" && f.message.type === "events-subscribed");
    expect(subscribed).toMatchObject({ message: { subscription: "all", cursor: 0 } });
    const first = await raw.waitFor((f) => f.kind === "control" && f.message.type === "event");
    expect(first).toMatchObject({ message: { subscription: "all", event: { cursor: expect.any(Number), type: "conversation.created" } } });
    // The same socket opens its organisation's conversations, as its scope allows.
    raw.control({ type: "join", conversation });
    const role = await server.server.identity.access.roleFor({ orgId: helpdesk.orgId }, conversation);
    expect(role).not.toBeNull();
    expect(await raw.waitForControl("joined")).toMatchObject({ conversation, role });
    raw.control({ type: "subscribe-events", subscription: "bad", after: 999_999 });
    const stale = await raw.waitFor((f) => f.kind === "control" && f.message.type === "events-error");
    expect(stale).toMatchObject({ message: { subscription: "bad", code: ErrorCode.EventCursorExpired } });
    // A malformed subscription is a protocol violation.
    raw.control({ type: "subscribe-events", subscription: "x", after: -1 } as never);
    await waitUntil(() => raw.closeCode !== null);
    expect(raw.closeCode).toBe(4400);

    // A member (not admin or owner) may not follow events.
    const login = await api("POST", "/v1/auth/login", { body: { email: "mo@helpdesk-staff.example", password: PASSWORD, organisation: helpdesk.orgId } });
    const member = await RawClient.authenticated(server.url, login.body.accessToken as string);
    member.control({ type: "subscribe-events", subscription: "mine" });
    const refused = await member.waitFor((f) => f.kind === "control" && f.message.type === "events-error");
    expect(refused).toMatchObject({ message: { subscription: "mine", code: ErrorCode.InsufficientRole } });
    member.socket.close();
  });

  it("answers a cursor older than the retention window with EventCursorExpired (HTTP 410, SSE 410, socket, SDK)", async () => {
    clock += 31 * 86_400_000;
    // A month on the server's clock: the access tokens from the sign-ups have expired.
    helpdesk.token = await signIn(api, "ann@helpdesk.example", PARTNER_PASSWORD);
    await api("POST", `/v1/conversations/${conversation}/reopen`, { token: helpdesk.token });
    await post(helpdesk.key, conversation, "A month later.");
    await waitUntil(async () => (await allEvents(helpdesk.key, 0)).at(-1)?.type === "message.created");
    expect(await server.server.events.prune()).toBeGreaterThan(0);

    const paged = await api("GET", "/v1/events?after=1", { token: helpdesk.key });
    expect(paged.status).toBe(410);
    expect(paged.body.error?.code).toBe(ErrorCode.EventCursorExpired);
    expect(paged.body.error?.message).toMatch(/retention/);
    // Without a cursor, paging starts at the oldest event kept.
    const fresh = await api("GET", "/v1/events", { token: helpdesk.key });
    expect(fresh.status).toBe(200);
    expect((fresh.body.items as ParleyEvent[]).map((e) => e.type)).toEqual(["conversation.reopened", "message.created"]);

    const sse = await fetch(`${server.httpUrl}/v1/events/stream`, { headers: { authorization: `Bearer ${helpdesk.key}`, "last-event-id": "1" } });
    expect(sse.status).toBe(410);
    expect(((await sse.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.EventCursorExpired);

    const stale = collect(sdk(helpdesk.key).events({ after: 1 }));
    await stale.done;
    expect(stale.error).toMatchObject({ code: ErrorCode.EventCursorExpired });
  });
});
