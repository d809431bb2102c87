// The socket: connect, authenticate (and renew the token before it expires), route frames to the
// open conversations, and reconnect with backoff when the close code says so. Everything about a
// single conversation lives in ConversationChannel; this class only owns the connection.

import {
  type AuthOkMessage,
  decodeServerFrame,
  encodeControlFrame,
  isConversationId,
  type NoticeMessage,
  PROTOCOL_VERSION,
  type ServerFrame,
  type SessionLimits,
  shouldReconnect,
} from "../protocol/index.ts";
import { backoffDelay, type ReconnectPolicy, reconnectPolicy } from "./backoff.ts";
import {
  type ChannelTransport,
  ConversationChannel,
  type ConversationControlMessage,
  type ConversationHandle,
  type OpenOptions,
} from "./conversation-handle.ts";
import type { ParleyErrorInfo } from "./errors.ts";
import { type EventFeed, EventFeedChannel, type EventFeedOptions } from "./event-feed.ts";
import { Emitter, type Listener } from "./events.ts";
import {
  apiUrlFor,
  type ChangePage,
  type ChangesOptions,
  type ConversationAtPoint,
  HistoryApi,
  type HistoryPoint,
  type RestoreResult,
} from "./history.ts";
import { type ParleyLogger, silentLogger } from "./logger.ts";
import { type OwedReplies, StaleReplies } from "./stale-replies.ts";
import {
  messageBytes,
  resolveWebSocket,
  WEBSOCKET_OPEN,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./websocket.ts";

/** Returns a current access token; called before every (re)connection and before expiry. */
export type TokenProvider = () => string | Promise<string>;

/** Options for {@link ParleyClient}. */
export interface ParleyClientOptions {
  /** The server's socket URL, e.g. `wss://parley.example.com/ws`. */
  url: string;
  /** Supplies access tokens (fetch or refresh them here). */
  token: TokenProvider;
  /** WebSocket implementation (default `globalThis.WebSocket`; pass `ws` in Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff (default: full jitter, 250 ms doubling up to 10 s). */
  reconnect?: Partial<ReconnectPolicy>;
  /** Where to log (default: nowhere). */
  logger?: ParleyLogger;
  /** The HTTP API's base URL, for history (default: the socket URL's host over http(s)). */
  apiUrl?: string;
}

/** The socket's state: idle (nothing opened yet), connecting, connected, offline (will retry), error (will not), closed. */
export type ConnectionState = "idle" | "connecting" | "connected" | "offline" | "error" | "closed";

/** Payload of the client's "connection" event. */
export interface ConnectionEvent {
  /** The socket's new state. */
  state: ConnectionState;
  /** Why the client stopped (state "error"): a close code such as 4401, and the server's message. */
  error?: ParleyErrorInfo;
}

/** The authenticated session, as the server last confirmed it. */
export interface SessionInfo {
  /** Server-side session id (for support and audit lookups). */
  session: string;
  /** The authenticated user's id. */
  user: string;
  /** The user's organisation id. */
  org: string;
  /** When the current token expires, milliseconds since the epoch (the server's clock). */
  expiresAt: number;
  /** Limits the server enforces on this socket. */
  limits: SessionLimits;
}

/** The events a {@link ParleyClient} emits, by name, with their payloads. */
export interface ClientEvents {
  connection: ConnectionEvent;
}

// Renew at 75% of the token's remaining lifetime, and at least this long before it expires.
const RENEW_FRACTION = 0.75;
const RENEW_MARGIN_MS = 5_000;
// Never renew more often than this: a provider handing out the same near-expiry token must not spin.
const MIN_RENEW_DELAY_MS = 1_000;
// setTimeout overflows (and fires at once) beyond 2^31-1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When to renew a token expiring at `expiresAt`, in milliseconds from `now`. */
export function renewalDelay(expiresAt: number, now: number): number {
  const remaining = expiresAt - now;
  const delay = Math.min(remaining * RENEW_FRACTION, remaining - RENEW_MARGIN_MS);
  return Math.min(MAX_TIMER_MS, Math.max(MIN_RENEW_DELAY_MS, delay));
}

// The protocol's encoders allocate a fresh ArrayBuffer per frame (never a SharedArrayBuffer); this
// only tells the type system so, for DOM WebSocket.send.
function asSendable(frame: Uint8Array): Uint8Array<ArrayBuffer> {
  return frame as Uint8Array<ArrayBuffer>;
}

/** A connection to a Parley server carrying any number of conversations over one WebSocket. */
export class ParleyClient {
  private readonly url: string;
  private readonly tokenProvider: TokenProvider;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly policy: ReconnectPolicy;
  private readonly logger: ParleyLogger;
  private readonly emitter = new Emitter<ClientEvents>();
  private readonly channels = new Map<string, ConversationChannel>();
  /** Event subscriptions, by subscription name. */
  private readonly feeds = new Map<string, EventFeedChannel>();
  /** Replies still owed to closed handles (not to be taken by a reopened one). */
  private readonly stale = new StaleReplies();
  private readonly transport: ChannelTransport;
  private readonly historyApi: HistoryApi;

  private state: ConnectionState = "idle";
  private started = false;
  private closed = false;
  private socket: WebSocketLike | null = null;
  private authenticated = false;
  private token: string | undefined;
  private sessionInfo: SessionInfo | undefined;
  /** The last error frame not tied to a conversation (e.g. why authentication failed). */
  private connectionError: ParleyErrorInfo | undefined;
  /** Bumped per connection attempt so that a slow token provider cannot revive a stale attempt. */
  private attemptId = 0;
  private failedAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private renewing = false;

  constructor(options: ParleyClientOptions) {
    if (typeof options.url !== "string" || options.url.length === 0) throw new TypeError("options.url is required");
    if (typeof options.token !== "function") throw new TypeError("options.token must be a function");
    this.url = options.url;
    this.tokenProvider = options.token;
    this.WebSocketImpl = resolveWebSocket(options.WebSocket);
    this.policy = reconnectPolicy(options.reconnect);
    this.logger = options.logger ?? silentLogger;
    this.historyApi = new HistoryApi(options.apiUrl ?? apiUrlFor(options.url), () => this.fetchToken());
    this.transport = {
      logger: this.logger,
      send: (frame) => this.send(frame),
      retryDelay: (attempt) => backoffDelay(attempt, this.policy),
      limits: () => this.sessionInfo?.limits,
      released: (channel, owed) => this.release(channel, owed),
    };
  }

  /** The socket's current state. */
  get connection(): ConnectionState {
    return this.state;
  }

  /** The authenticated session, once the server has accepted a token. */
  get session(): SessionInfo | undefined {
    return this.sessionInfo;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.emitter.on(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.emitter.off(event, listener);
  }

  /** Opens a conversation (connecting the socket on first use). One handle per conversation at a time. */
  open(conversationId: string, options?: OpenOptions): ConversationHandle {
    if (this.closed) throw new Error("this ParleyClient is closed");
    if (!isConversationId(conversationId)) {
      throw new TypeError("conversation id must be 1-128 chars of [A-Za-z0-9._:-], starting with a letter or digit");
    }
    if (this.channels.has(conversationId)) {
      throw new Error(`conversation ${conversationId} is already open on this client; close that handle first`);
    }
    const channel = new ConversationChannel(conversationId, this.transport, options);
    this.channels.set(conversationId, channel);
    if (this.authenticated) channel.connected();
    else if (this.state === "error") channel.disconnected(this.connectionError);
    if (!this.started) {
      this.started = true;
      void this.connect();
    }
    return channel;
  }

  /**
   * Follows the organisation's events (needs an API key, or an admin's or owner's token) as an
   * async iterator, resuming after `options.after`; connects the socket on first use.
   */
  events(options: EventFeedOptions = {}): EventFeed {
    if (this.closed) throw new Error("this ParleyClient is closed");
    const feed = new EventFeedChannel(options, { send: (frame) => this.send(frame), released: (f) => this.feeds.delete(f.id) });
    this.feeds.set(feed.id, feed);
    if (this.authenticated) feed.connected();
    else if (this.state === "error") feed.disconnected(this.connectionError);
    if (!this.started) {
      this.started = true;
      void this.connect();
    }
    return feed;
  }

  /** The conversation as it was at a past `{ seq }` or `{ at }` (over HTTP; needs read access). */
  history(conversationId: string, point: HistoryPoint): Promise<ConversationAtPoint> {
    return this.historyApi.history(conversationId, point);
  }

  /** A page of the conversation's change points (seq, time, author), oldest first, for a timeline. */
  changes(conversationId: string, options?: ChangesOptions): Promise<ChangePage> {
    return this.historyApi.changes(conversationId, options);
  }

  /** Restores the conversation to a past point as a new change attributed to you (needs write access). */
  restore(conversationId: string, point: HistoryPoint): Promise<RestoreResult> {
    return this.historyApi.restore(conversationId, point);
  }

  /** Closes the socket cleanly (1000) and every open conversation; no reconnect. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    for (const channel of this.channels.values()) channel.shutdown();
    this.channels.clear();
    for (const feed of [...this.feeds.values()]) feed.shutdown();
    const socket = this.socket;
    this.socket = null;
    this.authenticated = false;
    if (socket !== null) {
      try {
        socket.close(1000, "client closed");
      } catch (error) {
        this.logger.debug("socket close failed", { error: String(error) });
      }
    }
    this.setState({ state: "closed" });
  }

  // ---- connecting and authenticating ----

  private async connect(): Promise<void> {
    if (this.closed) return;
    const attempt = ++this.attemptId;
    this.setState({ state: "connecting" });
    let token: string;
    try {
      // Fetch the token first: the server's authentication deadline starts when the socket opens.
      token = await this.fetchToken();
    } catch (error) {
      if (this.closed || attempt !== this.attemptId) return;
      this.logger.warn("token provider failed; will retry", { error: String(error) });
      this.scheduleReconnect();
      return;
    }
    if (this.closed || attempt !== this.attemptId) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch (error) {
      this.logger.error("could not create WebSocket", { url: this.url, error: String(error) });
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.token = token;
    this.connectionError = undefined;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.logger.debug("socket open; authenticating", { url: this.url });
      socket.send(asSendable(encodeControlFrame({ type: "auth", token, protocol: PROTOCOL_VERSION })));
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.onSocketClosed(event.code, event.reason);
    };
    socket.onerror = () => {
      // A close event always follows; that is where reconnecting is decided.
      if (this.socket === socket) this.logger.debug("socket error", { url: this.url });
    };
  }

  private onAuthOk(message: AuthOkMessage): void {
    const { session, user, org, expiresAt, limits } = message;
    this.sessionInfo = { session, user, org, expiresAt, limits };
    this.connectionError = undefined;
    this.scheduleRenewal(expiresAt);
    if (this.authenticated) {
      this.logger.debug("token renewed", { expiresAt });
      return;
    }
    this.authenticated = true;
    this.failedAttempts = 0;
    this.logger.debug("authenticated", { session, user, org });
    this.setState({ state: "connected" });
    for (const channel of this.channels.values()) channel.connected();
    for (const feed of this.feeds.values()) feed.connected();
  }

  private scheduleRenewal(expiresAt: number): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew();
    }, renewalDelay(expiresAt, Date.now()));
  }

  /** Fetches a fresh token and presents it on the same socket; the server answers with auth-ok. */
  private async renew(): Promise<void> {
    const socket = this.socket;
    const expiresAt = this.sessionInfo?.expiresAt;
    if (socket === null || !this.authenticated || this.renewing || expiresAt === undefined) return;
    this.renewing = true;
    let token: string;
    try {
      token = await this.fetchToken();
    } catch (error) {
      this.logger.warn("token renewal failed; will retry", { error: String(error) });
      // If it keeps failing the server closes with 4501 at expiry and we reconnect.
      if (this.socket === socket) this.scheduleRenewal(expiresAt);
      return;
    } finally {
      this.renewing = false;
    }
    if (this.socket !== socket || !this.authenticated) return;
    // eslint-disable-next-line security/detect-possible-timing-attacks -- both tokens are the client's own, no guess is being checked
    if (token === this.token) {
      // The provider still hands out the current token: nothing to present yet; ask again later.
      this.scheduleRenewal(expiresAt);
      return;
    }
    this.token = token;
    this.send(encodeControlFrame({ type: "auth", token, protocol: PROTOCOL_VERSION }));
  }

  private async fetchToken(): Promise<string> {
    const token: unknown = await this.tokenProvider();
    if (typeof token !== "string" || token.length === 0) throw new TypeError("token provider returned no token");
    return token;
  }

  // ---- receiving ----

  private receive(data: unknown): void {
    const bytes = messageBytes(data);
    if (bytes === null) {
      this.logger.warn("ignored a non-binary frame");
      return;
    }
    let frame: ServerFrame;
    try {
      frame = decodeServerFrame(bytes);
    } catch (error) {
      this.logger.warn("ignored an undecodable frame", { error: String(error) });
      return;
    }
    if (frame.kind === "doc") {
      if (!this.stale.isStaleDoc(frame.conversation)) this.channels.get(frame.conversation)?.receiveDoc(frame.message);
      return;
    }
    const message = frame.message;
    switch (message.type) {
      case "auth-ok":
        this.onAuthOk(message);
        return;
      case "notice":
        this.onNotice(message);
        return;
      case "error":
        if (message.conversation === undefined || message.request === "auth") {
          // Not about a conversation: remember it, it usually explains the close that follows.
          this.connectionError = { code: message.code, message: message.message };
          this.logger.warn("server error", { code: message.code, message: message.message, request: message.request });
          return;
        }
        this.route(message.conversation, message);
        return;
      case "joined":
      case "left":
      case "ack":
        this.route(message.conversation, message);
        return;
      case "events-subscribed":
      case "event":
      case "events-error":
        this.feeds.get(message.subscription)?.receive(message);
        return;
    }
  }

  private route(conversation: string, message: ConversationControlMessage): void {
    if (this.stale.claimControl(conversation, message)) return;
    const channel = this.channels.get(conversation);
    if (channel === undefined) {
      this.logger.debug("message for a conversation that is not open; ignored", { conversation, type: message.type });
      return;
    }
    channel.receiveControl(message);
  }

  private onNotice(message: NoticeMessage): void {
    this.logger.debug("server notice", { kind: message.kind, message: message.message });
    // "shutting-down" needs nothing: the 1012 close that follows triggers a reconnect.
    if (message.kind === "token-expiring") void this.renew();
  }

  // ---- sending ----

  private send(frame: Uint8Array): boolean {
    const socket = this.socket;
    if (socket === null || !this.authenticated || socket.readyState !== WEBSOCKET_OPEN) return false;
    try {
      socket.send(asSendable(frame));
      return true;
    } catch (error) {
      this.logger.warn("send failed", { error: String(error) });
      return false;
    }
  }

  private release(channel: ConversationChannel, owed: OwedReplies): void {
    if (this.channels.get(channel.conversationId) === channel) this.channels.delete(channel.conversationId);
    this.stale.expect(channel.conversationId, owed);
  }

  // ---- closing and reconnecting ----

  private onSocketClosed(code: number, reason: string): void {
    this.socket = null;
    this.authenticated = false;
    this.stale.clear();
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (this.closed) return;
    if (!shouldReconnect(code)) {
      const error: ParleyErrorInfo = {
        code,
        message: this.connectionError?.message ?? (reason || `the server closed the connection (${code})`),
      };
      this.logger.error("connection closed; not reconnecting", { ...error });
      this.connectionError = error;
      this.setState({ state: "error", error });
      for (const channel of this.channels.values()) channel.disconnected(error);
      for (const feed of [...this.feeds.values()]) feed.disconnected(error);
      return;
    }
    this.logger.debug("connection lost; will reconnect", { code, reason });
    for (const channel of this.channels.values()) channel.disconnected();
    for (const feed of this.feeds.values()) feed.disconnected();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.setState({ state: "offline" });
    const delay = backoffDelay(this.failedAttempts++, this.policy);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.reconnectTimer = undefined;
    this.renewTimer = undefined;
  }

  private setState(event: ConnectionEvent): void {
    if (event.state === this.state && event.error === undefined) return;
    this.state = event.state;
    this.emitter.emit("connection", event);
  }
}
