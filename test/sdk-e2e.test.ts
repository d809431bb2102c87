// The client SDK against the real server (in-process, ephemeral port, SQLite in a temp dir), with
// `ws` as the WebSocket: concurrent editing converges, offline edits survive disconnects and server
// restarts, status reports what is saved, and an authentication failure is final.

import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CloseCode,
  type ConversationHandle,
  type ConversationStatusInfo,
  ErrorCode,
  ParleyClient,
  type ParleyClientOptions,
  type WebSocketConstructor,
} from "../client-sdk/index.ts";
import type { Role } from "../protocol/index.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.cleanup();
});

/** `ws` behind a switch: while `offline`, new connections go nowhere (refused), like a dead network. */
class Network {
  offline = false;
  readonly sockets: WebSocket[] = [];
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const network = this;
    this.WebSocket = class extends WebSocket {
      constructor(url: string) {
        super(network.offline ? "ws://127.0.0.1:1/ws" : url);
        network.sockets.push(this);
      }
    };
  }

  /** Drops the current connection abruptly (no close frame) and keeps new ones from getting through. */
  cut(): void {
    this.offline = true;
    this.sockets.at(-1)?.terminate();
  }
}

const clients: ParleyClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function connect(
  user: string,
  org: string,
  conversations: Record<string, Role>,
  extra: Partial<ParleyClientOptions> & { network?: Network } = {},
): { client: ParleyClient; network: Network } {
  const network = extra.network ?? new Network();
  const client = new ParleyClient({
    url: server.url,
    token: () => server.token({ user, org, conversations }),
    WebSocket: network.WebSocket,
    reconnect: { baseMs: 20, capMs: 200 },
    ...extra,
  });
  clients.push(client);
  return { client, network };
}

const notes = (handle: ConversationHandle) => handle.doc.getText("notes").toString();

describe("the SDK against the real server", { timeout: 20_000 }, () => {
  it("converges two clients editing concurrently", async () => {
    const alice = connect("alice", "helpdesk", { "e2e-converge": "writer" }).client.open("e2e-converge");
    const bob = connect("bob", "supplier", { "e2e-converge": "writer" }).client.open("e2e-converge");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);

    for (let i = 0; i < 10; i++) {
      alice.doc.getText("notes").insert(0, `a${i} `);
      bob.doc.getText("notes").insert(notes(bob).length, `b${i} `);
    }
    await Promise.all([alice.whenSaved(), bob.whenSaved()]);
    await vi.waitFor(() => expect(notes(alice)).toBe(notes(bob)));
    for (let i = 0; i < 10; i++) {
      expect(notes(alice)).toContain(`a${i} `);
      expect(notes(alice)).toContain(`b${i} `);
    }
  });

  it("reports synced, unsaved changes and saved sequence numbers", async () => {
    const handle = connect("carol", "helpdesk", { "e2e-status": "writer" }).client.open("e2e-status");
    const statuses: ConversationStatusInfo[] = [];
    const saved: number[] = [];
    let synced = 0;
    handle.on("status", (s) => statuses.push(s));
    handle.on("saved", (e) => saved.push(e.seq));
    handle.on("synced", () => synced++);
    await handle.whenSynced();
    expect(handle.status).toMatchObject({ state: "synced", role: "writer" });
    expect(synced).toBe(1);

    handle.doc.getText("notes").insert(0, "first");
    await new Promise((resolve) => setTimeout(resolve, 0)); // separate ticks: separate writes
    handle.doc.getText("notes").insert(5, " second");
    expect(handle.status.unsavedChanges).toBeGreaterThanOrEqual(1);
    await handle.whenSaved();
    expect(handle.status.unsavedChanges).toBe(0);
    expect(handle.status.lastSavedSeq).toBe(Math.max(...saved));
    expect(handle.status.lastSavedSeq).toBeGreaterThanOrEqual(2);
    expect(statuses.map((s) => s.state)).toContain("synced");
    expect(statuses.some((s) => s.unsavedChanges > 0)).toBe(true);
    expect(statuses.at(-1)).toMatchObject({ state: "synced", unsavedChanges: 0 });
  });

  it("catches up after being offline and delivers its own offline edits", async () => {
    const { client: aliceClient, network } = connect("alice", "helpdesk", { "e2e-offline": "writer" });
    const alice = aliceClient.open("e2e-offline");
    const bob = connect("bob", "supplier", { "e2e-offline": "writer" }).client.open("e2e-offline");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);

    network.cut();
    await vi.waitFor(() => expect(alice.status.state).toBe("offline"));
    alice.doc.getText("notes").insert(0, "[alice offline]");
    bob.doc.getText("notes").insert(0, "[bob live]");
    await bob.whenSaved();
    expect(alice.status.unsavedChanges).toBe(1);
    expect(notes(alice)).not.toContain("bob");

    network.offline = false;
    await alice.whenSaved();
    await vi.waitFor(() => {
      expect(notes(alice)).toContain("[bob live]");
      expect(notes(bob)).toContain("[alice offline]");
      expect(notes(bob)).toBe(notes(alice));
    });
    expect(alice.status).toMatchObject({ state: "synced", unsavedChanges: 0 });
  });

  it("survives a server restart: edits made while it is down are saved after it returns", async () => {
    const alice = connect("alice", "helpdesk", { "e2e-restart": "writer" }).client.open("e2e-restart");
    const bob = connect("bob", "supplier", { "e2e-restart": "writer" }).client.open("e2e-restart");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);
    alice.doc.getText("notes").insert(0, "before. ");
    await alice.whenSaved();

    await server.stop();
    await vi.waitFor(() => expect(alice.status.state).toBe("offline"));
    alice.doc.getText("notes").insert(notes(alice).length, "during. ");
    expect(alice.status.unsavedChanges).toBe(1);

    await server.restart();
    await alice.whenSaved();
    await vi.waitFor(() => expect(notes(bob)).toBe("before. during. "));

    // Durable: a fresh client sees everything.
    const carol = connect("carol", "helpdesk", { "e2e-restart": "observer" }).client.open("e2e-restart");
    await carol.whenSynced();
    expect(notes(carol)).toBe("before. during. ");
  });

  it("refuses observers' writes and says so", async () => {
    const handle = connect("dave", "supplier", { "e2e-observer": "observer" }).client.open("e2e-observer");
    await handle.whenSynced();
    expect(handle.status.role).toBe("observer");
    const errors: number[] = [];
    handle.on("error", (e) => errors.push(e.code));
    handle.doc.getText("notes").insert(0, "sneaky");
    await expect(handle.whenSaved()).rejects.toMatchObject({ code: ErrorCode.ReadOnly });
    expect(errors).toEqual([ErrorCode.ReadOnly]);
    expect(handle.status.unsavedChanges).toBe(1);
  });

  it("shows presence to others and withdraws it on close", async () => {
    const alice = connect("alice", "helpdesk", { "e2e-presence": "writer" }).client.open("e2e-presence");
    const bob = connect("bob", "supplier", { "e2e-presence": "writer" }).client.open("e2e-presence");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);
    alice.awareness.setLocalStateField("user", { name: "Alice" });
    await vi.waitFor(() => expect(bob.awareness.getStates().get(alice.awareness.clientID)).toEqual({ user: { name: "Alice" } }));
    const aliceId = alice.awareness.clientID;
    alice.close();
    await vi.waitFor(() => expect(bob.awareness.getStates().has(aliceId)).toBe(false));
  });

  it("shows presence again after a reconnect", async () => {
    const { client, network } = connect("alice", "helpdesk", { "e2e-presence-back": "writer" });
    const alice = client.open("e2e-presence-back");
    const bob = connect("bob", "supplier", { "e2e-presence-back": "writer" }).client.open("e2e-presence-back");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);
    alice.awareness.setLocalStateField("user", { name: "Alice" });
    const aliceId = alice.awareness.clientID;
    await vi.waitFor(() => expect(bob.awareness.getStates().has(aliceId)).toBe(true));

    network.cut();
    await vi.waitFor(() => expect(bob.awareness.getStates().has(aliceId)).toBe(false));
    network.offline = false;
    await vi.waitFor(() => expect(alice.status.state).toBe("synced"));
    await vi.waitFor(() => expect(bob.awareness.getStates().get(aliceId)).toEqual({ user: { name: "Alice" } }));
  });

  it("puts a forbidden conversation in error without disturbing the rest", async () => {
    const { client } = connect("erin", "supplier", { "e2e-allowed": "writer" });
    const allowed = client.open("e2e-allowed");
    const denied = client.open("e2e-denied");
    await expect(denied.whenSynced()).rejects.toMatchObject({ code: ErrorCode.Forbidden });
    await allowed.whenSynced();
    expect(denied.status).toMatchObject({ state: "error", error: { code: ErrorCode.Forbidden } });
  });

  it("does not reconnect after an authentication failure (4401)", async () => {
    const network = new Network();
    const { client } = connect("mallory", "nowhere", {}, { network, token: () => "not-a-token" });
    const states: string[] = [];
    client.on("connection", (e) => states.push(e.state));
    const handle = client.open("e2e-auth");
    await expect(handle.whenSynced()).rejects.toMatchObject({ code: CloseCode.AuthFailed });
    expect(handle.status.state).toBe("error");
    expect(handle.status.error?.code).toBe(CloseCode.AuthFailed);
    // The decision is made when the socket closes; a reconnect is always announced first
    // ("offline", then a backoff timer). "error" was announced instead: no reconnect follows.
    expect(states.at(-1)).toBe("error");
    expect(states).not.toContain("offline");
    expect(network.sockets).toHaveLength(1);
    expect(client.connection).toBe("error");
  });

  it("renews a short-lived token on the same socket instead of being cut off", async () => {
    const network = new Network();
    let tokens = 0;
    const { client } = connect("frank", "helpdesk", {}, {
      network,
      token: () => {
        tokens++;
        return server.token({ user: "frank", org: "helpdesk", conversations: { "e2e-renew": "writer" }, ttlSeconds: 7 });
      },
    });
    const handle = client.open("e2e-renew");
    await handle.whenSynced();
    const firstExpiry = client.session?.expiresAt ?? 0;
    // Past the first token's expiry: the server would have closed with 4501 had it not been renewed.
    await new Promise((resolve) => setTimeout(resolve, firstExpiry - Date.now() + 1_500));
    expect(network.sockets).toHaveLength(1);
    expect(tokens).toBeGreaterThanOrEqual(2);
    expect(client.session?.expiresAt ?? 0).toBeGreaterThan(firstExpiry);
    handle.doc.getText("notes").insert(0, "still writing");
    await handle.whenSaved();
  });
});
