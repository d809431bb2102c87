// One WebSocket connection: its authentication state, principal, joined conversations and rate
// budget, plus typed helpers to send frames to it. Kept small on purpose: an idle connection
// costs one of these, and the target is a few kilobytes per idle connection in total.

import { randomBytes } from "node:crypto";
import {
  CloseCode,
  type ErrorCode,
  type ErrorMessage,
  encodeControlFrame,
  encodeDocFrame,
  encodeDocMessage,
  type DocMessage,
  type Role,
  type ServerControlMessage,
} from "../../protocol/index.ts";
import { type AnyPrincipal, actingOrg, actorId } from "../http/principal.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import type { BroadcastOrigin, Dialect } from "./broadcaster.ts";
import { monotonicClock } from "../platform/clock.ts";

/**
 * The buffer size at which uWS itself drops frames and the connection (no close frame: 1006), for
 * a soft limit at which the session closes itself with 4508. Far above it, because topic
 * messages reach the buffers before the session's check runs (one burst of publishes).
 */
export function hardBackpressureLimit(softLimitBytes: number): number {
  return softLimitBytes * 4 + 32 * 1024 * 1024;
}

/** Who a connection is, for log lines: its actor and organisation once it authenticated. */
export function principalLogFields(principal: AnyPrincipal | null): { user?: string; org?: string } {
  return principal ? { user: actorId(principal), org: actingOrg(principal) } : {};
}

/** Where a connection is in its life. */
export type SessionPhase = "awaiting-auth" | "authenticating" | "ready" | "closed";

/** What uWS keeps as the socket's user data. */
export interface SocketData {
  session: ClientSession;
}

/** A conversation this connection has joined. */
export interface JoinedConversation {
  /** Null while the role is being looked up; frames for the conversation wait for it. */
  role: Role | null;
  /** Settles once the role lookup finished (found or not). */
  roleKnown: Promise<void>;
  /** Settles after this connection's latest write to the conversation (orders no-op acks); rejects when that write failed. */
  lastWrite: Promise<unknown>;
}

/** One WebSocket connection, Parley or y-websocket dialect. */
export class ClientSession implements BroadcastOrigin {
  /** Random id, recorded in audit entries and logs. */
  readonly id = randomBytes(9).toString("base64url");
  socket: UWS.WebSocket<SocketData> | null = null;
  phase: SessionPhase = "awaiting-auth";
  /** Who the connection authenticated as (null until it has): the principal the HTTP API resolves too. */
  principal: AnyPrincipal | null = null;
  /** When the authentication ends unless renewed (ms since the epoch). */
  expiresAt = 0;
  readonly joined = new Map<string, JoinedConversation>();
  /** When the connection opened, on the monotonic clock: the authentication timeout and the frame budget run from here. */
  readonly openedAt = monotonicClock();
  /** Frames received before authentication completed, replayed in order afterwards. */
  preAuthQueue: Uint8Array[] | null = null;
  preAuthBytes = 0;
  private tokens: number;
  private refilledAt = this.openedAt;

  constructor(
    readonly dialect: Dialect,
    readonly remoteAddress: string,
    private readonly framesPerSecond: number,
    /** Send buffer this connection may fill before it is closed as a slow consumer. */
    private readonly maxBufferedBytes: number = Number.POSITIVE_INFINITY,
    /** Counts frames sent (metrics). */
    private readonly traffic?: SocketTraffic,
  ) {
    this.tokens = framesPerSecond * 2;
  }

  /** Takes one frame from the rate budget; false when the connection is over its rate. */
  takeFrameBudget(now: number): boolean {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.framesPerSecond * 2, this.tokens + (elapsed * this.framesPerSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Sends raw bytes if the socket is still open. */
  send(bytes: Uint8Array): void {
    if (!this.socket) return;
    this.socket.send(bytes, true);
    this.traffic?.sent(this.dialect, 1);
    this.closeIfSlow();
  }

  /** Sends a control frame; y-websocket connections have no control frames, so nothing is sent there. */
  sendControl(message: ServerControlMessage): void {
    if (this.socket && this.dialect === "parley") this.send(encodeControlFrame(message));
  }

  /**
   * Closes the connection with 4508 once more than the allowed bytes wait in its send buffer. The
   * close frame queues behind what is buffered, so a client that reads again sees why it was
   * dropped (and resyncs on reconnect). uWS's own limit must stay well above this one: past it,
   * uWS drops every frame, the close frame included, and the client only sees 1006.
   */
  closeIfSlow(): boolean {
    const socket = this.socket;
    if (!socket || socket.getBufferedAmount() <= this.maxBufferedBytes) return false;
    this.close(CloseCode.SlowConsumer, "send buffer full: read faster, then resync");
    return true;
  }

  sendError(code: ErrorCode, message: string, extra: Pick<ErrorMessage, "conversation" | "request"> = {}): void {
    this.sendControl({ type: "error", code, message, ...extra });
  }

  /** Encodes a document message in this connection's dialect. */
  encodeDoc(conversation: string, message: DocMessage): Uint8Array {
    return this.dialect === "parley" ? encodeDocFrame(conversation, message) : encodeDocMessage(message);
  }

  /** Sends a document message in this connection's dialect. */
  sendDoc(conversation: string, message: DocMessage): void {
    if (this.socket) this.send(this.encodeDoc(conversation, message));
  }

  /** Closes with a code and a short reason (the socket handler's close callback cleans up). */
  close(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.end(code, reason.slice(0, 120));
  }
}
