// One conversation on the shared socket: joining, syncing by state vector, sending local changes
// and counting which of them the server has made durable, awareness, and the status the app sees.
// The socket itself belongs to ParleyClient; this module only sees it through ChannelTransport.

import {
  type AckMessage,
  type DocMessage,
  encodeControlFrame,
  encodeDocFrame,
  ErrorCode,
  type ErrorMessage,
  type JoinedMessage,
  type LeftMessage,
  type Role,
  type SessionLimits,
} from "../protocol/index.ts";
import { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";
import { ParleyError, type ParleyErrorInfo, toParleyError } from "./errors.ts";
import { Emitter, type Listener } from "./events.ts";
import type { ParleyLogger } from "./logger.ts";
import { PresenceLink } from "./presence.ts";
import type { OwedReplies } from "./stale-replies.ts";
import { type PendingWrite, WriteTracker } from "./write-tracker.ts";

/** Where a conversation stands: connecting, synced (live), offline (reconnecting), error, closed. */
export type ConversationState = "connecting" | "synced" | "offline" | "error" | "closed";

/** A snapshot of a conversation's state, as `handle.status` and the "status" event report it. */
export interface ConversationStatusInfo {
  /** Where the conversation stands. */
  state: ConversationState;
  /** This identity's role, once the server has said (writer or observer). */
  role?: Role;
  /** Sequence number of the last of this client's writes the server acknowledged (0: none yet). */
  lastSavedSeq: number;
  /** Local changes not yet acknowledged as durable (they survive reconnects; see `whenSaved`). */
  unsavedChanges: number;
  /** Why the conversation is in the "error" state. */
  error?: ParleyErrorInfo;
}

/** Payload of the "saved" event: a write was acknowledged as durable. */
export interface SavedEvent {
  /** The acknowledged write's committed sequence number. */
  seq: number;
  /** Local changes still waiting for an acknowledgement. */
  unsavedChanges: number;
}

/** Payload of the "synced" event: the document holds everything the server has. */
export interface SyncedEvent {
  /** This identity's role in the conversation. */
  role: Role;
  /** The conversation's last committed sequence number when it was joined. */
  seq: number;
}

/** The events a conversation handle emits, by name, with their payloads. */
export interface ConversationEvents {
  status: ConversationStatusInfo;
  saved: SavedEvent;
  synced: SyncedEvent;
  error: ParleyErrorInfo;
}

/** Options for `client.open`: bring your own document or awareness (the SDK never destroys them). */
export interface OpenOptions {
  /** The document to sync (default: a new Y.Doc; the awareness' doc when only that is given). */
  doc?: Y.Doc;
  /** The awareness to share (default: a new Awareness for the doc, destroyed on close). */
  awareness?: Awareness;
}

/** An open conversation: its Y.Doc and Awareness kept in sync with the server over the shared socket. */
export interface ConversationHandle {
  /** The conversation's id. */
  readonly conversationId: string;
  /** The conversation's document; remote changes are applied with the handle itself as origin. */
  readonly doc: Y.Doc;
  /** Presence for this conversation; only this client's own state is ever sent. */
  readonly awareness: Awareness;
  /** The current status (a fresh immutable snapshot after every change). */
  readonly status: ConversationStatusInfo;
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ConversationEvents>(event: K, listener: Listener<ConversationEvents[K]>): () => void;
  /** Removes a listener. */
  off<K extends keyof ConversationEvents>(event: K, listener: Listener<ConversationEvents[K]>): void;
  /** Resolves the first time the document is synced; rejects if the handle errors or closes first. */
  whenSynced(): Promise<void>;
  /** Resolves once no local change is unsaved; rejects if one was refused, or on error or close. */
  whenSaved(): Promise<void>;
  /** Leaves and withdraws presence; the doc stays usable locally. Await `whenSaved()` first to be sure edits are durable. */
  close(): void;
}

/** What a conversation needs from the client that owns the socket. */
export interface ChannelTransport {
  readonly logger: ParleyLogger;
  /** Sends a frame if the socket is open and authenticated; returns false otherwise. */
  send(frame: Uint8Array): boolean;
  /** Delay before re-sending a write (or join) the server refused with a transient error. */
  retryDelay(attempt: number): number;
  /** The limits the server announced for this socket (undefined before authentication). */
  limits(): SessionLimits | undefined;
  /** The app closed the handle; `owed` says which replies to it are still to come. */
  released(channel: ConversationChannel, owed: OwedReplies): void;
}

/** Control messages addressed to one conversation. */
export type ConversationControlMessage = JoinedMessage | LeftMessage | AckMessage | ErrorMessage;

// Errors after which the same request can succeed later ("nothing was stored, retry").
const TRANSIENT_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.Internal,
  ErrorCode.StoreUnavailable,
  ErrorCode.ShuttingDown,
  ErrorCode.RateLimited,
  ErrorCode.Overloaded,
]);

// Local changes made in the same tick go out as one merged write (a loop of edits is one frame),
// flushed early once this many bytes are waiting, to stay well under the server's update limit.
const COALESCE_MAX_BYTES = 64 * 1024;

const CLOSED: ParleyErrorInfo = { code: 1000, message: "the conversation handle was closed" };

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
  settled: boolean;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody has to await these; an unobserved rejection must not crash Node.
  promise.catch(() => {});
  const d: Deferred = {
    promise,
    settled: false,
    resolve: () => {
      d.settled = true;
      resolve();
    },
    reject: (error) => {
      d.settled = true;
      reject(error);
    },
  };
  return d;
}

/** One write carrying several: the merged update and every change they carried. */
function mergeWrites(writes: readonly PendingWrite[]): PendingWrite {
  if (writes.length === 1) return writes[0];
  return {
    update: Y.mergeUpdates(writes.map((w) => w.update)),
    changes: [...new Set(writes.flatMap((w) => w.changes))],
  };
}

/** Per-connection progress: not joined, join sent, or joined (document traffic flows). */
type Phase = "detached" | "joining" | "joined";

/** The SDK's implementation of {@link ConversationHandle}; driven by ParleyClient. */
export class ConversationChannel implements ConversationHandle {
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  private readonly ownsAwareness: boolean;
  private readonly presence: PresenceLink;
  private readonly events = new Emitter<ConversationEvents>();
  private readonly writes = new WriteTracker();
  private readonly firstSync = deferred();
  private saveWaiters: Deferred[] = [];
  private phase: Phase = "detached";
  private syncedOnThisConnection = false;
  private state: ConversationState = "connecting";
  private role: Role | undefined;
  private joinedSeq = 0;
  private lastSavedSeq = 0;
  private error: ParleyErrorInfo | undefined;
  private lastRefusal: ParleyErrorInfo | undefined;
  private snapshot: ConversationStatusInfo;
  private retryQueue: PendingWrite[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAttempt = 0;
  private rejoinTimer: ReturnType<typeof setTimeout> | undefined;
  private rejoinAttempt = 0;
  /** Local changes of the current tick, not yet sent. */
  private outgoing: PendingWrite[] = [];
  private outgoingBytes = 0;

  readonly conversationId: string;
  private readonly transport: ChannelTransport;

  constructor(conversationId: string, transport: ChannelTransport, options: OpenOptions = {}) {
    this.conversationId = conversationId;
    this.transport = transport;
    this.doc = options.doc ?? options.awareness?.doc ?? new Y.Doc();
    if (options.awareness !== undefined && options.awareness.doc !== this.doc) {
      throw new TypeError("options.awareness must belong to options.doc");
    }
    this.ownsAwareness = options.awareness === undefined;
    this.awareness = options.awareness ?? new Awareness(this.doc);
    this.presence = new PresenceLink(this.awareness, (update) => this.sendDoc({ type: "awareness", update }), this);
    this.snapshot = this.computeStatus();
    this.doc.on("update", this.onDocUpdate);
    this.doc.on("destroy", this.onDocDestroy);
  }

  get status(): ConversationStatusInfo {
    return this.snapshot;
  }

  on<K extends keyof ConversationEvents>(event: K, listener: Listener<ConversationEvents[K]>): () => void {
    return this.events.on(event, listener);
  }

  off<K extends keyof ConversationEvents>(event: K, listener: Listener<ConversationEvents[K]>): void {
    this.events.off(event, listener);
  }

  whenSynced(): Promise<void> {
    return this.firstSync.promise;
  }

  whenSaved(): Promise<void> {
    if (this.writes.unsavedChanges === 0) return Promise.resolve();
    if (this.state === "closed") return Promise.reject(toParleyError(CLOSED));
    if (this.state === "error" && this.error !== undefined) return Promise.reject(toParleyError(this.error));
    if (this.writes.hasRefused && this.lastRefusal !== undefined) {
      return Promise.reject(toParleyError(this.lastRefusal));
    }
    const waiter = deferred();
    this.saveWaiters.push(waiter);
    return waiter.promise;
  }

  close(): void {
    if (this.state === "closed") return;
    let leaveSent = false;
    if (this.phase === "joined") {
      this.flushOutgoing(); // this tick's edits still go out (their acks are not awaited)
      this.presence.withdraw();
    }
    if (this.phase !== "detached") {
      leaveSent = this.transport.send(encodeControlFrame({ type: "leave", conversation: this.conversationId }));
    }
    const owed = { left: leaveSent, writes: leaveSent ? this.writes.inflightWrites : 0 };
    this.teardown();
    this.transport.released(this, owed);
  }

  // ---- driven by ParleyClient ----

  /** The socket is authenticated (first time or after a reconnect): join. */
  connected(): void {
    if (this.state === "error" || this.state === "closed") return;
    this.phase = "joining";
    this.state = "connecting";
    this.transport.send(encodeControlFrame({ type: "join", conversation: this.conversationId }));
    this.publishStatus();
  }

  /** The socket closed; `error` when the client will not reconnect. */
  disconnected(error?: ParleyErrorInfo): void {
    if (this.state === "closed") return;
    this.detach();
    if (error !== undefined) this.fail(error);
    else if (this.state !== "error") {
      this.state = "offline";
      this.publishStatus();
    }
  }

  /** The client is closing for good: withdraw presence and stop (the socket closes right after). */
  shutdown(): void {
    if (this.state === "closed") return;
    if (this.phase === "joined") {
      this.flushOutgoing();
      this.presence.withdraw();
    }
    this.teardown();
  }

  /** A control message addressed to this conversation. */
  receiveControl(message: ConversationControlMessage): void {
    if (this.state === "closed") return;
    switch (message.type) {
      case "joined":
        this.onJoined(message);
        return;
      case "left":
        this.detach();
        this.fail({
          code: message.code ?? ErrorCode.Forbidden,
          message: message.message ?? "the server removed this socket from the conversation",
        });
        return;
      case "ack":
        this.onAck(message.seq);
        return;
      case "error":
        this.onError(message);
        return;
    }
  }

  /** A document message addressed to this conversation. */
  receiveDoc(message: DocMessage): void {
    if (this.phase !== "joined") {
      this.transport.logger.debug("document frame before join completed; ignored", {
        conversation: this.conversationId,
        type: message.type,
      });
      return;
    }
    switch (message.type) {
      case "sync-step2":
        this.applyRemote(message.update);
        if (!this.syncedOnThisConnection) this.onSynced();
        return;
      case "update":
        this.applyRemote(message.update);
        return;
      case "sync-step1":
        this.answerStep1(message.stateVector);
        return;
      case "awareness":
        try {
          this.presence.receive(message.update);
        } catch (error) {
          this.transport.logger.warn("undecodable awareness update; ignored", {
            conversation: this.conversationId,
            error: String(error),
          });
        }
        return;
    }
  }

  // ---- the sync and write protocol ----

  private onJoined(message: JoinedMessage): void {
    if (this.phase !== "joining") {
      this.transport.logger.warn("unexpected joined; ignored", { conversation: this.conversationId });
      return;
    }
    this.phase = "joined";
    this.role = message.role;
    this.joinedSeq = message.seq;
    this.sendDoc({ type: "sync-step1", stateVector: Y.encodeStateVector(this.doc) });
    this.presence.joined();
    this.publishStatus();
  }

  private onSynced(): void {
    this.syncedOnThisConnection = true;
    this.rejoinAttempt = 0;
    this.state = "synced";
    this.error = undefined;
    if (!this.firstSync.settled) this.firstSync.resolve();
    this.events.emit("synced", { role: this.role ?? "observer", seq: this.joinedSeq });
    this.publishStatus();
  }

  /** The server's state vector: answer with everything it lacks, including every unsaved change. */
  private answerStep1(stateVector: Uint8Array): void {
    let update: Uint8Array;
    try {
      update = Y.encodeStateAsUpdate(this.doc, stateVector);
    } catch (error) {
      this.transport.logger.warn("undecodable state vector from server; ignored", {
        conversation: this.conversationId,
        error: String(error),
      });
      return;
    }
    // Always answer, even with an empty update: the server expects exactly one step 2.
    this.sendWrite({ changes: this.writes.unsavedList(), update }, "sync-step2");
  }

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.state === "closed") return;
    const change = this.writes.recordLocalChange();
    // Not joined yet (or offline): the change waits in the doc and goes out in the sync step 2 that
    // answers the server's state vector after the next join.
    if (this.phase === "joined") {
      if (this.outgoing.length === 0) queueMicrotask(() => this.flushOutgoing());
      this.outgoing.push({ changes: [change], update });
      this.outgoingBytes += update.length;
      const limit = Math.min(COALESCE_MAX_BYTES, (this.transport.limits()?.maxUpdateBytes ?? Infinity) / 2);
      if (this.outgoingBytes >= limit) this.flushOutgoing();
    }
    this.publishStatus();
  };

  private flushOutgoing(): void {
    const pending = this.outgoing;
    this.outgoing = [];
    this.outgoingBytes = 0;
    // Dropped when no longer joined: the changes stay unsaved and ride the next sync step 2.
    if (pending.length === 0 || this.phase !== "joined") return;
    this.sendWrite(mergeWrites(pending), "update");
  }

  private sendWrite(write: PendingWrite, type: "update" | "sync-step2"): void {
    if (this.sendDoc({ type, update: write.update })) this.writes.sent(write);
  }

  private onAck(seq: number): void {
    const write = this.writes.acked();
    if (write === undefined) {
      this.transport.logger.warn("ack without a pending write; ignored", { conversation: this.conversationId, seq });
      return;
    }
    this.lastSavedSeq = Math.max(this.lastSavedSeq, seq);
    this.retryAttempt = 0;
    this.events.emit("saved", { seq, unsavedChanges: this.writes.unsavedChanges });
    this.settleSaveWaiters();
    this.publishStatus();
  }

  private onError(message: ErrorMessage): void {
    const info: ParleyErrorInfo = { code: message.code, message: message.message };
    switch (message.request) {
      case "join":
        this.detach();
        if (TRANSIENT_ERRORS.has(info.code)) this.scheduleRejoin(info);
        else this.fail(info);
        return;
      case "write":
        this.onWriteRefused(info);
        return;
      case "awareness":
        this.transport.logger.warn("awareness update refused", { conversation: this.conversationId, ...info });
        return;
      default:
        this.events.emit("error", info);
    }
  }

  private onWriteRefused(info: ParleyErrorInfo): void {
    const transient = TRANSIENT_ERRORS.has(info.code);
    const write = this.writes.rejected(!transient);
    if (write === undefined) {
      this.transport.logger.warn("write error without a pending write", { conversation: this.conversationId, ...info });
    } else if (transient) {
      this.transport.logger.debug("write refused for now; will re-send", { conversation: this.conversationId, ...info });
      this.scheduleRetry(write);
      return;
    }
    this.lastRefusal = info;
    this.events.emit("error", info);
    this.settleSaveWaiters();
    this.publishStatus();
  }

  /** The server could not open the conversation for now: try again on this socket after a while. */
  private scheduleRejoin(info: ParleyErrorInfo): void {
    this.transport.logger.debug("join refused for now; will retry", { conversation: this.conversationId, ...info });
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = undefined;
      // Only if still waiting on this socket; after a reconnect the client re-joins anyway.
      if (this.phase === "detached" && this.state === "connecting") this.connected();
    }, this.transport.retryDelay(this.rejoinAttempt++));
  }

  private scheduleRetry(write: PendingWrite): void {
    this.retryQueue.push(write);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const queued = this.retryQueue;
      this.retryQueue = [];
      if (this.phase !== "joined" || queued.length === 0) return;
      this.sendWrite(mergeWrites(queued), "update");
    }, this.transport.retryDelay(this.retryAttempt++));
  }

  private settleSaveWaiters(): void {
    if (this.saveWaiters.length === 0) return;
    let outcome: (w: Deferred) => void;
    if (this.writes.unsavedChanges === 0) outcome = (w) => w.resolve();
    else if (this.writes.hasRefused && this.lastRefusal !== undefined) {
      const error = toParleyError(this.lastRefusal);
      outcome = (w) => w.reject(error);
    } else return;
    const waiters = this.saveWaiters;
    this.saveWaiters = [];
    for (const waiter of waiters) outcome(waiter);
  }

  private applyRemote(update: Uint8Array): void {
    try {
      Y.applyUpdate(this.doc, update, this);
    } catch (error) {
      this.transport.logger.warn("undecodable update from server; ignored", {
        conversation: this.conversationId,
        error: String(error),
      });
    }
  }

  // ---- lifecycle ----

  private sendDoc(message: DocMessage): boolean {
    return this.transport.send(encodeDocFrame(this.conversationId, message));
  }

  /** Forgets everything tied to the current connection (replies that will never come, peers). */
  private detach(): void {
    this.phase = "detached";
    this.syncedOnThisConnection = false;
    this.writes.connectionLost();
    this.clearRetry();
    this.presence.detached();
  }

  private fail(error: ParleyErrorInfo): void {
    if (this.state === "closed") return;
    this.state = "error";
    this.error = error;
    const rejection = toParleyError(error);
    if (!this.firstSync.settled) this.firstSync.reject(rejection);
    this.rejectSaveWaiters(rejection);
    this.events.emit("error", error);
    this.publishStatus();
  }

  private teardown(): void {
    this.phase = "detached";
    this.state = "closed";
    this.clearRetry();
    this.doc.off("update", this.onDocUpdate);
    this.doc.off("destroy", this.onDocDestroy);
    this.presence.dispose();
    // Our own Awareness holds an interval timer; the app's awareness and the doc are the app's.
    if (this.ownsAwareness) this.awareness.destroy();
    const rejection = new ParleyError(CLOSED.code, CLOSED.message);
    if (!this.firstSync.settled) this.firstSync.reject(rejection);
    this.rejectSaveWaiters(rejection);
    this.publishStatus();
  }

  private readonly onDocDestroy = (): void => this.close();

  private rejectSaveWaiters(error: ParleyError): void {
    const waiters = this.saveWaiters;
    this.saveWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.rejoinTimer !== undefined) clearTimeout(this.rejoinTimer);
    this.retryTimer = undefined;
    this.rejoinTimer = undefined;
    this.retryQueue = [];
    this.outgoing = [];
    this.outgoingBytes = 0;
  }

  private computeStatus(): ConversationStatusInfo {
    const status: ConversationStatusInfo = {
      state: this.state,
      lastSavedSeq: this.lastSavedSeq,
      unsavedChanges: this.writes.unsavedChanges,
    };
    if (this.role !== undefined) status.role = this.role;
    if (this.state === "error" && this.error !== undefined) status.error = this.error;
    return Object.freeze(status);
  }

  private publishStatus(): void {
    const next = this.computeStatus();
    const prev = this.snapshot;
    if (
      prev.state === next.state &&
      prev.role === next.role &&
      prev.lastSavedSeq === next.lastSavedSeq &&
      prev.unsavedChanges === next.unsavedChanges &&
      prev.error === next.error
    ) {
      return;
    }
    this.snapshot = next;
    this.events.emit("status", next);
  }
}
