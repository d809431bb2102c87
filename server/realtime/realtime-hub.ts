// What connections do with conversations, whatever their wire dialect: join, sync, write,
// awareness, leave, disconnect. The dialect routes (parley-route.ts, yjs-route.ts) decode frames
// and decide how to answer; the rules about who may do what live here, checked on every frame.

import { ErrorCode, type Role } from "../../protocol/index.ts";
import { type AnyPrincipal, actingOrg, actorId } from "../http/principal.ts";
import { ParleyError } from "../platform/errors.ts";
import type { Logger } from "../platform/logger.ts";
import type { Overload, WriteAdmission } from "../writes/write-admission.ts";
import type { WritePath } from "../writes/write-path.ts";
import { type Broadcaster, topicOf } from "./broadcaster.ts";
import type { ClientSession, JoinedConversation } from "./client-session.ts";
import { ChannelRegistry } from "./conversation-channel.ts";
import type { CachedDocument, DocumentCache } from "../documents/document-cache.ts";
import { principalAwarenessIdentity } from "./awareness-claims.ts";

/** Dependencies of the hub, wired by the composition root. */
export interface RealtimeHubDeps {
  cache: DocumentCache;
  writePath: WritePath;
  broadcaster: Broadcaster;
  logger: Logger;
  maxConversationsPerSocket: number;
  maxAwarenessBytes: number;
  /** Size limit for a client's sync step 2 (its offline edits), larger than for one update. */
  maxCatchUpBytes: number;
  /** The conversations' local channels, shared with the broadcaster (it checks their members' buffers). */
  channels?: ChannelRegistry;
  /** The principal's current role in a conversation (null: it may not see it). */
  resolveRole(principal: AnyPrincipal, conversation: string): Promise<Role | null>;
  /** Load shedding: when it says the node is overloaded, new writes are refused (Overloaded). */
  admission?: Pick<WriteAdmission, "overload">;
  /** Told of every write refused by load shedding, with the reason (metrics). */
  onShed?: (reason: NonNullable<Overload>) => void;
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** A connection's place (0-1) in the order writers are shed in: its random id's first two characters (base64url). */
function shedRank(sessionId: string): number {
  return (BASE64URL.indexOf(sessionId.charAt(0)) * 64 + BASE64URL.indexOf(sessionId.charAt(1))) / 4096;
}

/** How a write arrived (see {@link RealtimeHub.write}). */
export interface WriteOptions {
  envelope?: Uint8Array;
  bareFrame?: Uint8Array;
  catchUp?: boolean;
}

/** The shared conversation logic behind every socket. */
export class RealtimeHub {
  readonly sessions = new Set<ClientSession>();
  readonly channels: ChannelRegistry;
  private shuttingDown = false;

  constructor(private readonly deps: RealtimeHubDeps) {
    this.channels = deps.channels ?? new ChannelRegistry();
  }

  /**
   * Joins a conversation the session may see; resolves with the conversation's cached state once
   * loaded (null if the session left or closed meanwhile). Throws Forbidden for any
   * conversation it may not see — existing or not, so ids cannot be probed. Frames for the
   * conversation that arrive while the role is looked up wait for it (clients may pipeline).
   */
  async join(session: ClientSession, conversation: string): Promise<{ doc: CachedDocument; role: Role } | null> {
    const principal = session.principal;
    if (!principal) throw new ParleyError(ErrorCode.NotAuthenticated, "not authenticated");
    let joined = session.joined.get(conversation);
    if (!joined) {
      if (session.joined.size >= this.deps.maxConversationsPerSocket) {
        throw new ParleyError(ErrorCode.TooManyConversations, "too many conversations on one connection");
      }
      let roleKnown!: () => void;
      const entry: JoinedConversation = { role: null, roleKnown: new Promise((resolve) => (roleKnown = resolve)), lastWrite: Promise.resolve() };
      joined = entry;
      session.joined.set(conversation, entry);
      let role: Role | null;
      try {
        role = await this.deps.resolveRole(principal, conversation);
      } catch (error) {
        this.deps.logger.error({ err: error, conversation }, "access lookup failed");
        if (session.joined.get(conversation) === entry) session.joined.delete(conversation);
        roleKnown();
        throw new ParleyError(ErrorCode.StoreUnavailable, "access could not be checked; retry");
      }
      if (!role || session.joined.get(conversation) !== entry) {
        if (session.joined.get(conversation) === entry) session.joined.delete(conversation);
        roleKnown();
        if (!role) throw new ParleyError(ErrorCode.Forbidden, "no access to this conversation");
        return null;
      }
      entry.role = role;
      roleKnown();
      this.channels.acquire(conversation, session);
      session.socket?.subscribe(topicOf(session.dialect, conversation));
    } else {
      await joined.roleKnown;
    }
    let doc: CachedDocument;
    try {
      // With its document-rules index when it can be had: the client ids people wrote with are
      // theirs in awareness too, on every node (the index reads the shared owners).
      doc = await this.deps.cache.withIndex(conversation).then(
        (indexed) => indexed.doc,
        () => this.deps.cache.get(conversation),
      );
    } catch (error) {
      this.deps.logger.error({ err: error, conversation }, "loading conversation failed");
      this.leave(session, conversation);
      throw new ParleyError(ErrorCode.StoreUnavailable, "conversation could not be loaded; retry");
    }
    const role = joined.role;
    return session.joined.get(conversation) === joined && role && session.socket ? { doc, role } : null;
  }

  /**
   * Answers a sync step 1 with the encoded sync step 2 frame (what the client lacks), or null if
   * the session is gone. The full-state answer every new client gets is encoded once per
   * document version and dialect.
   */
  async syncStep1(session: ClientSession, conversation: string, stateVector: Uint8Array): Promise<Uint8Array | null> {
    await this.joinedWithRole(session, conversation);
    const doc = await this.deps.cache.get(conversation);
    if (!session.joined.has(conversation)) return null;
    let diff: Uint8Array;
    try {
      diff = doc.diff(stateVector);
    } catch {
      throw new ParleyError(ErrorCode.MalformedFrame, "invalid state vector");
    }
    const encode = () => session.encodeDoc(conversation, { type: "sync-step2", update: diff });
    return doc.isFullState(diff) ? doc.memo(`step2:${session.dialect}`, encode) : encode();
  }

  /**
   * Writes an update through the durable, audited write path; resolves with its sequence number
   * once committed. `update` must be the caller's own copy; `envelope` (Parley) and `bareFrame`
   * (y-websocket) are the frames to publish; `catchUp` marks a sync step 2 (offline edits),
   * allowed up to the frame size. Not an async function: a write to a joined conversation (the
   * common case) makes no promise of its own around the write path's.
   */
  write(session: ClientSession, conversation: string, update: Uint8Array, options: WriteOptions = {}): Promise<number> {
    try {
      // Known at once after the join: waiting only while the role is still being looked up.
      const known = this.joinedOrThrow(session, conversation);
      if (known.role === null) return this.joinedWithRole(session, conversation).then((joined) => this.writeJoined(session, conversation, joined, update, options));
      return this.writeJoined(session, conversation, known, update, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private writeJoined(session: ClientSession, conversation: string, joined: JoinedConversation, update: Uint8Array, options: WriteOptions): Promise<number> {
    if (joined.role !== "writer") throw new ParleyError(ErrorCode.ReadOnly, "observers cannot change this conversation");
    if (this.shuttingDown) throw new ParleyError(ErrorCode.ShuttingDown, "server is shutting down; retry");
    const overload = this.deps.admission?.overload(shedRank(session.id));
    if (overload) {
      // Before any work on it: refusing must cost far less than the write would.
      this.deps.onShed?.(overload);
      throw new ParleyError(ErrorCode.Overloaded, "the server is overloaded; nothing was stored, retry shortly");
    }
    const principal = session.principal;
    if (!principal) throw new ParleyError(ErrorCode.NotAuthenticated, "not authenticated");
    const actor = { user: actorId(principal), org: actingOrg(principal), session: session.id };
    const written = this.deps.writePath.submit(conversation, update, actor, {
      origin: session,
      envelope: options.envelope,
      bareFrame: options.bareFrame,
      previousWrite: joined.lastWrite,
      // A sync step 2 carries everything a client did offline: allow it up to the frame limit.
      maxBytes: options.catchUp ? this.deps.maxCatchUpBytes : undefined,
    });
    // Only waited on (never for its outcome) by the next write's no-op ack; the caller handles
    // its rejection, so keeping it as is makes no unhandled rejection and no extra promise.
    joined.lastWrite = written;
    return written;
  }

  /** Relays an awareness update after checking it only touches the session's own states. */
  awareness(session: ClientSession, conversation: string, update: Uint8Array, envelope?: Uint8Array): { foreign: number } {
    this.joinedOrThrow(session, conversation);
    if (update.length > this.deps.maxAwarenessBytes) {
      throw new ParleyError(ErrorCode.FrameTooLarge, "awareness update too large");
    }
    const channel = this.channels.get(conversation);
    // Bound to the identity too, so a reconnecting owner takes its ids back and nobody else can.
    const who = session.principal ? principalAwarenessIdentity(session.principal) : `session:${session.id}`;
    const result = channel?.awareness.accept(session, update, who);
    if (result?.update) {
      // The prebuilt envelope only fits when nothing was dropped from the update.
      const frame = result.update === update ? envelope : undefined;
      this.deps.broadcaster.publish(conversation, { type: "awareness", update: result.update }, session, frame);
    }
    return { foreign: result?.foreign ?? 0 };
  }

  /** The awareness states of others, for a joining client. */
  awarenessSnapshot(conversation: string): Uint8Array | null {
    return this.channels.get(conversation)?.awareness.snapshot() ?? null;
  }

  /** Leaves a conversation: unsubscribes and removes the session's awareness states. */
  leave(session: ClientSession, conversation: string): boolean {
    if (!session.joined.delete(conversation)) return false;
    session.socket?.unsubscribe(topicOf(session.dialect, conversation));
    const channel = this.channels.get(conversation);
    const removal = channel?.awareness.removeOwner(session);
    if (removal) this.deps.broadcaster.publish(conversation, { type: "awareness", update: removal });
    this.channels.release(conversation, session);
    return true;
  }

  /** Registers a newly opened connection. */
  opened(session: ClientSession): void {
    this.sessions.add(session);
  }

  /** Cleans up after a closed connection (uWS has already unsubscribed it). */
  closed(session: ClientSession): void {
    session.phase = "closed";
    session.socket = null;
    for (const conversation of [...session.joined.keys()]) this.leave(session, conversation);
    this.sessions.delete(session);
  }

  /** Refuses new writes from now on (graceful shutdown). */
  stopWrites(): void {
    this.shuttingDown = true;
  }

  /** The joined conversation once its role is known; NotJoined if not joined (or refused). */
  private async joinedWithRole(session: ClientSession, conversation: string): Promise<JoinedConversation> {
    const joined = this.joinedOrThrow(session, conversation);
    if (joined.role === null) {
      await joined.roleKnown;
      if (session.joined.get(conversation) !== joined || joined.role === null) {
        throw new ParleyError(ErrorCode.NotJoined, "join the conversation first");
      }
    }
    return joined;
  }

  private joinedOrThrow(session: ClientSession, conversation: string): JoinedConversation {
    const joined = session.joined.get(conversation);
    if (!joined) throw new ParleyError(ErrorCode.NotJoined, "join the conversation first");
    return joined;
  }
}
