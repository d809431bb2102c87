// The client SDK against an in-process stand-in for the server that follows the socket contract
// (auth, join, sync by state vector, one ack or error per write, fan-out, close codes). It lets the
// SDK's behaviour be pinned down without the network; test/sdk-e2e.test.ts runs it against the
// real server.

import WebSocket from "ws";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import {
  type ConnectionEvent,
  type ConversationHandle,
  type ConversationStatusInfo,
  ParleyClient,
  type ParleyClientOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../client-sdk/index.ts";
import {
  type ClientFrame,
  CloseCode,
  decodeClientFrame,
  encodeControlFrame,
  encodeDocFrame,
  ErrorCode,
  type DocMessage,
  PROTOCOL_VERSION,
  type Role,
  type ServerControlMessage,
} from "../protocol/index.ts";

// The `ws` package must fit the SDK's structural WebSocket type (checked by tsc).
const _wsFits: WebSocketConstructor = WebSocket;
void _wsFits;

// ---------------------------------------------------------------------------------------------
// A fake server speaking the contract, with knobs for the failure modes under test.

interface FakeConversation {
  doc: Y.Doc;
  seq: number;
  writes: number;
}

class FakeSocket implements WebSocketLike {
  binaryType = "blob";
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** Everything the client sent, decoded. */
  readonly received: ClientFrame[] = [];
  authenticated = false;
  readonly joined = new Map<string, Role>();
  closedByClient: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    private readonly server: FakeParleyServer,
  ) {
    server.sockets.push(this);
    queueMicrotask(() => {
      if (!server.accepting) {
        this.serverClose(1006);
        return;
      }
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    const copy = new Uint8Array(data);
    queueMicrotask(() => {
      if (this.readyState === 3) return;
      const frame = decodeClientFrame(copy);
      this.received.push(frame);
      this.server.handle(this, frame);
    });
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.serverClose(code ?? 1005, reason);
  }

  /** Server → client frame (delivered asynchronously, as an ArrayBuffer). */
  push(frame: Uint8Array): void {
    const buffer = frame.slice().buffer;
    queueMicrotask(() => {
      if (this.readyState !== 3) this.onmessage?.({ data: buffer });
    });
  }

  /** The connection ends with `code` (the server closed it, or the network dropped it). */
  serverClose(code: number, reason = ""): void {
    if (this.readyState >= 2) return;
    // Frames pushed before the close are still delivered, as on a real socket.
    this.readyState = 2;
    queueMicrotask(() => {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    });
  }

  docFrames(type?: DocMessage["type"]): DocMessage[] {
    return this.received.flatMap((f) => (f.kind === "doc" && (type === undefined || f.message.type === type) ? [f.message] : []));
  }

  controlTypes(): string[] {
    return this.received.flatMap((f) => (f.kind === "control" ? [f.message.type] : []));
  }
}

class FakeParleyServer {
  readonly sockets: FakeSocket[] = [];
  readonly conversations = new Map<string, FakeConversation>();
  /** Role per conversation; conversations not listed are forbidden. */
  roles: Record<string, Role> = {};
  accepting = true;
  tokenLifetimeMs = 60_000;
  isValidToken = (token: string): boolean => token.startsWith("good");
  /** Refuse the next writes with these error codes (one per write). */
  readonly writeFaults: ErrorCode[] = [];
  /** When set, acks are queued here instead of sent. */
  heldAcks: Array<() => void> | undefined;

  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const server = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string) {
        super(url, server);
      }
    };
  }

  conversation(id: string): FakeConversation {
    let c = this.conversations.get(id);
    if (c === undefined) {
      c = { doc: new Y.Doc(), seq: 0, writes: 0 };
      this.conversations.set(id, c);
    }
    return c;
  }

  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error("no socket yet");
    return socket;
  }

  releaseAcks(): void {
    const held = this.heldAcks ?? [];
    this.heldAcks = undefined;
    for (const send of held) send();
  }

  handle(socket: FakeSocket, frame: ClientFrame): void {
    const control = (message: ServerControlMessage) => socket.push(encodeControlFrame(message));
    if (frame.kind === "control") {
      const m = frame.message;
      if (m.type === "auth") {
        if (m.protocol !== PROTOCOL_VERSION || !this.isValidToken(m.token)) {
          control({ type: "error", code: ErrorCode.InvalidToken, message: "token rejected", request: "auth" });
          socket.serverClose(CloseCode.AuthFailed, "auth failed");
          return;
        }
        socket.authenticated = true;
        control({
          type: "auth-ok",
          protocol: PROTOCOL_VERSION,
          session: `s${this.sockets.length}`,
          user: "u1",
          org: "o1",
          expiresAt: Date.now() + this.tokenLifetimeMs,
          limits: { maxFrameBytes: 1 << 20, maxUpdateBytes: 1 << 19, maxConversations: 16 },
        });
        return;
      }
      if (!socket.authenticated) {
        socket.serverClose(CloseCode.ProtocolViolation);
        return;
      }
      if (m.type === "join") {
        const role = this.roles[m.conversation];
        if (role === undefined) {
          control({ type: "error", code: ErrorCode.Forbidden, message: "no access", conversation: m.conversation, request: "join" });
          return;
        }
        socket.joined.set(m.conversation, role);
        control({ type: "joined", conversation: m.conversation, role, seq: this.conversation(m.conversation).seq });
        return;
      }
      if (m.type !== "leave") return; // event subscriptions: not part of this fake
      socket.joined.delete(m.conversation);
      control({ type: "left", conversation: m.conversation });
      return;
    }

    const id = frame.conversation;
    const role = socket.joined.get(id);
    const message = frame.message;
    if (role === undefined) {
      control({ type: "error", code: ErrorCode.NotJoined, message: "not joined", conversation: id, request: "write" });
      return;
    }
    const c = this.conversation(id);
    switch (message.type) {
      case "sync-step1":
        socket.push(encodeDocFrame(id, { type: "sync-step2", update: Y.encodeStateAsUpdate(c.doc, message.stateVector) }));
        if (role === "writer") socket.push(encodeDocFrame(id, { type: "sync-step1", stateVector: Y.encodeStateVector(c.doc) }));
        return;
      case "awareness":
        this.fanOut(socket, id, message);
        return;
      case "update":
      case "sync-step2": {
        const fault = this.writeFaults.shift();
        if (role === "observer" || fault !== undefined) {
          control({
            type: "error",
            code: fault ?? ErrorCode.ReadOnly,
            message: "write refused",
            conversation: id,
            request: "write",
          });
          return;
        }
        const before = Y.encodeStateVector(c.doc);
        Y.applyUpdate(c.doc, message.update);
        c.writes += 1;
        if (!sameBytes(before, Y.encodeStateVector(c.doc))) {
          c.seq += 1;
          this.fanOut(socket, id, { type: "update", update: message.update });
        }
        const seq = c.seq;
        const ack = () => control({ type: "ack", conversation: id, seq });
        if (this.heldAcks !== undefined) this.heldAcks.push(ack);
        else ack();
        return;
      }
    }
  }

  private fanOut(from: FakeSocket, id: string, message: DocMessage): void {
    for (const socket of this.sockets) {
      if (socket !== from && socket.readyState === 1 && socket.joined.has(id)) socket.push(encodeDocFrame(id, message));
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// ---------------------------------------------------------------------------------------------

const clients: ParleyClient[] = [];

function makeClient(server: FakeParleyServer, options: Partial<ParleyClientOptions> = {}): ParleyClient {
  const client = new ParleyClient({
    url: "ws://parley.test/ws",
    token: () => "good-token",
    WebSocket: server.WebSocket,
    reconnect: { baseMs: 5, capMs: 20 },
    ...options,
  });
  clients.push(client);
  return client;
}

function recordStatus(handle: ConversationHandle): ConversationStatusInfo[] {
  const seen: ConversationStatusInfo[] = [];
  handle.on("status", (s) => seen.push(s));
  return seen;
}

const text = (handle: ConversationHandle) => handle.doc.getText("notes").toString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

describe("connecting and syncing", () => {
  it("authenticates first, in binary, with the token and protocol version, then joins and syncs", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    server.conversation("c1").doc.getText("notes").insert(0, "from the server");
    const client = makeClient(server);
    const handle = client.open("c1");
    expect(handle.status.state).toBe("connecting");
    expect(client.connection).toBe("connecting");

    await handle.whenSynced();
    expect(client.connection).toBe("connected");
    const socket = server.last;
    expect(socket.url).toBe("ws://parley.test/ws");
    expect(socket.binaryType).toBe("arraybuffer");
    expect(socket.received[0]).toEqual({
      kind: "control",
      message: { type: "auth", token: "good-token", protocol: PROTOCOL_VERSION },
    });
    expect(socket.controlTypes()).toEqual(["auth", "join"]);
    expect(socket.docFrames("sync-step1")).toHaveLength(1);
    expect(text(handle)).toBe("from the server");
    expect(handle.status).toMatchObject({ state: "synced", role: "writer", unsavedChanges: 0 });
    expect(client.session).toMatchObject({ user: "u1", org: "o1" });
  });

  it("answers the server's state vector with exactly what it lacks, even when that is nothing", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const client = makeClient(server);
    const handle = client.open("c1");
    await handle.whenSynced();
    await vi.waitFor(() => expect(server.last.docFrames("sync-step2")).toHaveLength(1));
    await vi.waitFor(() => expect(server.conversation("c1").writes).toBe(1));
    expect(handle.status.unsavedChanges).toBe(0);
  });

  it("shares one socket between conversations", async () => {
    const server = new FakeParleyServer();
    server.roles = { a: "writer", b: "observer" };
    const client = makeClient(server);
    const a = client.open("a");
    const b = client.open("b");
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    expect(server.sockets).toHaveLength(1);
    expect(a.status.role).toBe("writer");
    expect(b.status.role).toBe("observer");
  });

  it("refuses a second handle for the same conversation and invalid ids", () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const client = makeClient(server);
    client.open("c1");
    expect(() => client.open("c1")).toThrow(/already open/);
    expect(() => client.open("no spaces allowed")).toThrow(/conversation id/);
  });

  it("reports a forbidden conversation as an error without affecting the others", async () => {
    const server = new FakeParleyServer();
    server.roles = { ok: "writer" };
    const client = makeClient(server);
    const ok = client.open("ok");
    const denied = client.open("secret");
    const errors: unknown[] = [];
    denied.on("error", (e) => errors.push(e));
    await expect(denied.whenSynced()).rejects.toMatchObject({ code: ErrorCode.Forbidden });
    await ok.whenSynced();
    expect(denied.status).toMatchObject({ state: "error", error: { code: ErrorCode.Forbidden } });
    expect(errors).toEqual([{ code: ErrorCode.Forbidden, message: "no access" }]);
  });
});

describe("editing and saving", () => {
  it("converges two clients editing concurrently, without echoing remote updates back", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const alice = makeClient(server).open("c1");
    const bob = makeClient(server).open("c1");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);

    alice.doc.getText("notes").insert(0, "alice ");
    bob.doc.getText("notes").insert(0, "bob ");
    alice.doc.getText("notes").insert(0, "again ");
    await Promise.all([alice.whenSaved(), bob.whenSaved()]);
    await vi.waitFor(() => expect(text(alice)).toBe(text(bob)));
    expect(text(alice)).toContain("alice");
    expect(text(alice)).toContain("bob");

    // Alice's two same-tick edits went out as one write; nobody sent back what they received.
    const [aliceSocket, bobSocket] = server.sockets;
    expect(aliceSocket.docFrames("update")).toHaveLength(1);
    expect(bobSocket.docFrames("update")).toHaveLength(1);
  });

  it("counts unsaved changes and reports saved with the last acknowledged seq", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    await vi.waitFor(() => expect(server.conversation("c1").writes).toBe(1)); // the empty step 2
    const statuses = recordStatus(handle);
    const saved: unknown[] = [];
    handle.on("saved", (e) => saved.push(e));

    server.heldAcks = [];
    handle.doc.getText("notes").insert(0, "one");
    await sleep(0);
    handle.doc.getText("notes").insert(3, "two");
    expect(handle.status.unsavedChanges).toBe(2);
    let savedAll = false;
    void handle.whenSaved().then(() => (savedAll = true));
    await vi.waitFor(() => expect(server.heldAcks).toHaveLength(2));
    expect(savedAll).toBe(false);

    server.releaseAcks();
    await vi.waitFor(() => expect(savedAll).toBe(true));
    expect(saved).toEqual([
      { seq: 1, unsavedChanges: 1 },
      { seq: 2, unsavedChanges: 0 },
    ]);
    expect(handle.status).toMatchObject({ state: "synced", lastSavedSeq: 2, unsavedChanges: 0 });
    expect(statuses.map((s) => s.unsavedChanges)).toEqual([1, 2, 1, 0]);
  });

  it("sends a burst of edits made in one tick as a single write", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    const saved: unknown[] = [];
    handle.on("saved", (e) => saved.push(e));
    for (let i = 0; i < 500; i++) handle.doc.getText("notes").insert(0, "x");
    expect(handle.status.unsavedChanges).toBe(500);
    await handle.whenSaved();
    expect(server.last.docFrames("update")).toHaveLength(1);
    expect(server.conversation("c1").doc.getText("notes").length).toBe(500);
    expect(saved).toHaveLength(2); // the empty sync step 2, then the burst
  });

  it("re-sends a write the server could not store for now, until it is saved", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    await vi.waitFor(() => expect(server.conversation("c1").writes).toBe(1));
    const errors: unknown[] = [];
    handle.on("error", (e) => errors.push(e));

    server.writeFaults.push(ErrorCode.StoreUnavailable, ErrorCode.Internal);
    handle.doc.getText("notes").insert(0, "important");
    await handle.whenSaved();
    expect(server.conversation("c1").doc.getText("notes").toString()).toBe("important");
    expect(server.last.docFrames("update")).toHaveLength(3);
    expect(errors).toEqual([]);
  });

  it("reports a refused write (observer) and does not pretend it was saved", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "observer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    const errors: Array<{ code: number }> = [];
    handle.on("error", (e) => errors.push(e));

    handle.doc.getText("notes").insert(0, "not allowed");
    await expect(handle.whenSaved()).rejects.toMatchObject({ code: ErrorCode.ReadOnly });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.ReadOnly]);
    expect(handle.status).toMatchObject({ state: "synced", role: "observer", unsavedChanges: 1 });
    expect(server.conversation("c1").doc.getText("notes").toString()).toBe("");
    // Later callers learn it at once instead of waiting forever.
    await expect(handle.whenSaved()).rejects.toMatchObject({ code: ErrorCode.ReadOnly });
  });
});

describe("going offline and coming back", () => {
  it("catches up on others' edits and delivers its own offline edits after a reconnect", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    let tokens = 0;
    const aliceClient = makeClient(server, { token: async () => `good-${++tokens}` });
    const alice = aliceClient.open("c1");
    const bob = makeClient(server).open("c1");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);
    const aliceStatus = recordStatus(alice);

    server.accepting = false;
    server.sockets[0].serverClose(1006);
    await vi.waitFor(() => expect(alice.status.state).toBe("offline"));

    alice.doc.getText("notes").insert(0, "offline by alice. ");
    bob.doc.getText("notes").insert(0, "live by bob. ");
    await bob.whenSaved();
    expect(alice.status.unsavedChanges).toBe(1);

    server.accepting = true;
    await alice.whenSaved();
    await vi.waitFor(() => expect(text(bob)).toBe(text(alice)));
    expect(text(alice)).toContain("offline by alice");
    expect(text(alice)).toContain("live by bob");
    expect(alice.status).toMatchObject({ state: "synced", unsavedChanges: 0 });
    expect(tokens).toBeGreaterThanOrEqual(2); // a fresh token for the new connection
    expect(aliceStatus.map((s) => s.state)).toEqual(expect.arrayContaining(["offline", "connecting", "synced"]));
  });

  it("re-sends a write whose ack was lost with the connection (recorded once, as Yjs dedupes)", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    await vi.waitFor(() => expect(server.conversation("c1").writes).toBe(1));

    server.heldAcks = [];
    handle.doc.getText("notes").insert(0, "did it land?");
    await vi.waitFor(() => expect(server.heldAcks).toHaveLength(1));
    server.heldAcks = undefined; // the ack is lost with the connection
    server.accepting = false;
    server.last.serverClose(CloseCode.ServiceRestart);
    await vi.waitFor(() => expect(handle.status.state).toBe("offline"));
    expect(handle.status.unsavedChanges).toBe(1);

    server.accepting = true;
    await handle.whenSaved();
    expect(server.conversation("c1").doc.getText("notes").toString()).toBe("did it land?");
  });

  it("reconnects after a shutting-down notice and a 1012 close", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    server.last.push(encodeControlFrame({ type: "notice", kind: "shutting-down", message: "bye" }));
    server.last.serverClose(CloseCode.ServiceRestart);
    await vi.waitFor(() => expect(server.sockets).toHaveLength(2));
    await vi.waitFor(() => expect(handle.status.state).toBe("synced"));
  });

  it("retries when the token provider fails, and recovers", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    let calls = 0;
    const client = makeClient(server, {
      token: async () => {
        calls += 1;
        if (calls < 3) throw new Error("identity provider down");
        return "good-token";
      },
    });
    const handle = client.open("c1");
    await handle.whenSynced();
    expect(calls).toBe(3);
    expect(server.sockets).toHaveLength(1);
  });

  it("does not reconnect after an authentication failure (4401) and says why", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const client = makeClient(server, { token: () => "forged" });
    const connection: ConnectionEvent[] = [];
    client.on("connection", (e) => connection.push(e));
    const handle = client.open("c1");

    await expect(handle.whenSynced()).rejects.toMatchObject({ code: CloseCode.AuthFailed });
    expect(handle.status).toMatchObject({
      state: "error",
      error: { code: CloseCode.AuthFailed, message: "token rejected" },
    });
    // No pause needed to prove "no reconnect": the client decides when the socket closes, and a
    // reconnect is always announced first (state "offline", then a backoff timer). It announced
    // "error" instead, and nothing after it.
    expect(connection.at(-1)).toEqual({ state: "error", error: { code: 4401, message: "token rejected" } });
    expect(connection.map((e) => e.state)).not.toContain("offline");
    expect(server.sockets).toHaveLength(1);
    expect(client.connection).toBe("error");
  });

  it("renews the token on the same socket before it expires", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    server.tokenLifetimeMs = 6_000; // renewal due after the 1 s floor
    let n = 0;
    const client = makeClient(server, { token: () => `good-${++n}` });
    await client.open("c1").whenSynced();
    const firstExpiry = client.session?.expiresAt ?? 0;

    await vi.waitFor(() => expect(server.last.controlTypes().filter((t) => t === "auth")).toHaveLength(2), {
      timeout: 3_000,
    });
    const auths = server.last.received.flatMap((f) => (f.kind === "control" && f.message.type === "auth" ? [f.message.token] : []));
    expect(auths).toEqual(["good-1", "good-2"]);
    expect(server.sockets).toHaveLength(1);
    await vi.waitFor(() => expect(client.session?.expiresAt ?? 0).toBeGreaterThan(firstExpiry));
    expect(server.last.controlTypes().filter((t) => t === "join")).toHaveLength(1);
  });
});

describe("presence", () => {
  it("shares only its own awareness state and withdraws it on close", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const alice = makeClient(server).open("c1");
    const bob = makeClient(server).open("c1");
    await Promise.all([alice.whenSynced(), bob.whenSynced()]);

    alice.awareness.setLocalStateField("user", { name: "Alice" });
    await vi.waitFor(() => expect(bob.awareness.getStates().get(alice.doc.clientID)).toEqual({ user: { name: "Alice" } }));

    const aliceId = alice.doc.clientID;
    alice.close();
    await vi.waitFor(() => expect(bob.awareness.getStates().has(aliceId)).toBe(false));
    expect(alice.status.state).toBe("closed");
    expect(server.sockets[0].controlTypes()).toContain("leave");
  });
});

describe("closing", () => {
  it("can close and reopen a conversation on the same socket", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const client = makeClient(server);
    const first = client.open("c1");
    await first.whenSynced();
    first.doc.getText("notes").insert(0, "kept locally");
    await first.whenSaved();
    first.close();
    expect(first.doc.getText("notes").toString()).toBe("kept locally");

    const second = client.open("c1");
    await second.whenSynced();
    expect(text(second)).toBe("kept locally");
    expect(second.status.state).toBe("synced");
    expect(server.sockets).toHaveLength(1);
  });

  it("does not mistake replies owed to a closed handle for replies to its reopened successor", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const warnings: string[] = [];
    const logger = { debug() {}, error() {}, warn: (message: string) => warnings.push(message) };
    const client = makeClient(server, { logger });
    const first = client.open("c1");
    await first.whenSynced();
    await vi.waitFor(() => expect(server.conversation("c1").writes).toBe(1));

    server.heldAcks = []; // the old handle's write commits late: its ack comes after `left`
    first.doc.getText("notes").insert(0, "old");
    await vi.waitFor(() => expect(server.heldAcks).toHaveLength(1));
    first.close();
    const second = client.open("c1");
    await second.whenSynced();
    await vi.waitFor(() => expect(server.heldAcks).toHaveLength(2)); // + the new handle's step 2
    expect(second.status.unsavedChanges).toBe(0);
    second.doc.getText("notes").insert(0, "new ");
    await vi.waitFor(() => expect(server.heldAcks).toHaveLength(3));
    expect(second.status.unsavedChanges).toBe(1);

    const release = server.heldAcks.splice(0);
    server.heldAcks = undefined;
    release[0](); // the stale ack
    await new Promise(setImmediate); // the fake socket delivers in microtasks: all ran by now
    expect(second.status.unsavedChanges).toBe(1);
    for (const send of release.slice(1)) send();
    await second.whenSaved();
    expect(second.status.lastSavedSeq).toBe(2);
    expect(warnings).toEqual([]);
  });

  it("closes cleanly with 1000 and never reconnects", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const client = makeClient(server);
    const handle = client.open("c1");
    await handle.whenSynced();
    client.close();
    expect(server.last.closedByClient).toMatchObject({ code: 1000 });
    expect(handle.status.state).toBe("closed");
    expect(client.connection).toBe("closed");
    // A closed client has cleared its timers and refuses to schedule a reconnect (close() is
    // final, see the next line): one socket, and no way to a second.
    expect(server.sockets).toHaveLength(1);
    expect(() => client.open("c2")).toThrow(/closed/);
  });

  it("puts a conversation in error when the server revokes access", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const handle = makeClient(server).open("c1");
    await handle.whenSynced();
    server.last.push(
      encodeControlFrame({ type: "left", conversation: "c1", code: ErrorCode.Forbidden, message: "access revoked" }),
    );
    await vi.waitFor(() => expect(handle.status.state).toBe("error"));
    expect(handle.status.error).toEqual({ code: ErrorCode.Forbidden, message: "access revoked" });
  });

  it("leaves the app's own doc and awareness alone when closing", async () => {
    const server = new FakeParleyServer();
    server.roles = { c1: "writer" };
    const doc = new Y.Doc();
    const { Awareness } = await import("y-protocols/awareness");
    const awareness = new Awareness(doc);
    awareness.setLocalStateField("user", "me");
    const handle = makeClient(server).open("c1", { awareness });
    expect(handle.doc).toBe(doc);
    await handle.whenSynced();
    handle.close();
    expect(awareness.getLocalState()).toEqual({ user: "me" });
    doc.getText("notes").insert(0, "still usable");
    expect(doc.getText("notes").toString()).toBe("still usable");
    awareness.destroy();
  });
});
