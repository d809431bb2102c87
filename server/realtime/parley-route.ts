// The Parley WebSocket endpoint (/ws): many conversations on one socket, msgpack control frames
// and enveloped y-protocols messages. Authentication comes first, within a deadline; frames sent
// while it is being checked wait (bounded) and are processed only once it succeeds.

import {
  CloseCode,
  type ClientControlMessage,
  type DocFrame,
  decodeClientFrame,
  ErrorCode,
  type ErrorMessage,
  PROTOCOL_VERSION,
  ProtocolError,
} from "../../protocol/index.ts";
import { actingOrg, actorId, type SocketAuthentication } from "../http/principal.ts";
import type { Config } from "../platform/config.ts";
import { describeError } from "../platform/errors.ts";
import type { SocketEventStreams } from "./socket-event-streams.ts";
import type { Logger } from "../platform/logger.ts";
import type { ConnectionLimits } from "../limits/connection-limits.ts";
import { clientAddress, forwardedForOf, type ProxyTrust } from "../platform/client-address.ts";
import { originAllowed, originRefusal } from "../platform/origin-policy.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import { ClientSession, hardBackpressureLimit, principalLogFields, type SocketData } from "./client-session.ts";
import { giveSlot, refuseWhenFull, takeSlot } from "./connection-slots.ts";
import type { RealtimeHub } from "./realtime-hub.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Dependencies of the Parley socket route. */
export interface ParleyRouteDeps {
  hub: RealtimeHub;
  /** Verifies a token and checks the identity may connect from this address now. */
  authenticate(token: string, ip: string): Promise<SocketAuthentication>;
  limits: Config["limits"];
  allowedOrigins: readonly string[];
  /** Which proxies may name the client (the same computation as HTTP; allowlists and limits use it). */
  proxyTrust: ProxyTrust;
  logger: Logger;
  /** Per-address cap on open sockets; none when absent. */
  connections?: ConnectionLimits;
  /** Counts frames in and out (metrics). */
  traffic?: SocketTraffic;
  /** Event subscriptions (`subscribe-events`); without it such frames are refused. */
  events?: SocketEventStreams;
  /** Looks a joined conversation's role up again for the session's principal, leaving it when gone (AccessEnforcer.recheck). */
  recheckAccess(session: ClientSession, conversation: string): void;
}

type Request = NonNullable<ErrorMessage["request"]>;

/** Errors after which the connection cannot usefully continue. */
function closeCodeFor(code: ErrorCode): number | null {
  switch (code) {
    case ErrorCode.MalformedFrame:
    case ErrorCode.NotAuthenticated:
      return CloseCode.ProtocolViolation;
    case ErrorCode.StoreUnavailable:
      return CloseCode.TryAgainLater; // the client resyncs on reconnect, so nothing is lost
    case ErrorCode.ShuttingDown:
      return CloseCode.ServiceRestart;
    default:
      return null;
  }
}

/** Registers the /ws route on the app. */
export function registerParleyRoute(app: UWS.TemplatedApp, deps: ParleyRouteDeps): void {
  const { hub, limits, logger } = deps;

  const fail = (session: ClientSession, error: unknown, request: Request, conversation?: string): void => {
    const { code, message } = describeError(error);
    if (code === ErrorCode.Internal) logger.error({ err: error, session: session.id, conversation }, "frame failed");
    session.sendError(code, message, { request, conversation });
    const closeCode = closeCodeFor(code);
    if (closeCode !== null) session.close(closeCode, message);
  };

  const authenticate = async (session: ClientSession, token: string, protocol: number): Promise<void> => {
    if (protocol !== PROTOCOL_VERSION) {
      session.sendError(ErrorCode.UnsupportedVersion, `protocol ${protocol} not supported; use ${PROTOCOL_VERSION}`, { request: "auth" });
      session.close(CloseCode.UnsupportedVersion, "unsupported protocol version");
      return;
    }
    const renewal = session.phase === "ready";
    if (!renewal) session.phase = "authenticating";
    let authenticated: SocketAuthentication;
    try {
      authenticated = await deps.authenticate(token, session.remoteAddress);
    } catch (error) {
      const { code, message } = describeError(error);
      logger.info({ session: session.id, code, remote: session.remoteAddress }, "authentication failed");
      session.sendError(code, message, { request: "auth" });
      session.close(CloseCode.AuthFailed, message);
      return;
    }
    if (session.phase === "closed") return;
    const { principal, expiresAt } = authenticated;
    const user = actorId(principal);
    const org = actingOrg(principal);
    if (renewal && (!session.principal || user !== actorId(session.principal) || org !== actingOrg(session.principal))) {
      session.sendError(ErrorCode.IdentityChanged, "a connection cannot change identity", { request: "auth" });
      session.close(CloseCode.AuthFailed, "identity changed");
      return;
    }
    session.principal = principal;
    session.expiresAt = expiresAt;
    session.phase = "ready";
    session.sendControl({
      type: "auth-ok",
      protocol: PROTOCOL_VERSION,
      session: session.id,
      user,
      org,
      expiresAt,
      limits: {
        maxFrameBytes: limits.maxFrameBytes,
        maxUpdateBytes: limits.maxUpdateBytes,
        maxConversations: limits.maxConversationsPerSocket,
      },
    });
    if (renewal) {
      // The new credential may reach less: every joined conversation's role is looked up again
      // for it (a token's own grants; the directory for people and API keys, whose sign-in
      // tokens list no conversations) and what it no longer reaches is left.
      for (const conversation of session.joined.keys()) deps.recheckAccess(session, conversation);
      return;
    }
    logger.info({ session: session.id, user, org }, "socket authenticated");
    const queued = session.preAuthQueue ?? [];
    session.preAuthQueue = null;
    for (const frame of queued) {
      if (session.phase !== "ready") break;
      handleFrame(session, frame, true);
    }
  };

  const join = async (session: ClientSession, conversation: string): Promise<void> => {
    const result = await hub.join(session, conversation);
    if (!result) return;
    const { doc, role } = result;
    logger.info({ session: session.id, ...principalLogFields(session.principal), conversation, role }, "socket joined");
    session.sendControl({ type: "joined", conversation, role, seq: doc.headSeq });
    // Writers get the server's state vector so they can send what the server lacks (offline edits).
    if (role === "writer") session.sendDoc(conversation, { type: "sync-step1", stateVector: doc.stateVector() });
    const awareness = hub.awarenessSnapshot(conversation);
    if (awareness) session.sendDoc(conversation, { type: "awareness", update: awareness });
  };

  const handleControl = (session: ClientSession, message: ClientControlMessage): void => {
    switch (message.type) {
      case "auth":
        void authenticate(session, message.token, message.protocol);
        return;
      case "join":
        join(session, message.conversation).catch((error: unknown) => {
          logger.info({ session: session.id, conversation: message.conversation, code: describeError(error).code }, "socket join refused");
          fail(session, error, "join", message.conversation);
        });
        return;
      case "leave": {
        // Answer after the acks of writes sent before the leave, so `left` is the last word.
        const earlierWrites = session.joined.get(message.conversation)?.lastWrite ?? Promise.resolve();
        if (hub.leave(session, message.conversation)) logger.info({ session: session.id, conversation: message.conversation }, "socket left");
        const sendLeft = () => session.sendControl({ type: "left", conversation: message.conversation });
        void earlierWrites.then(sendLeft, sendLeft); // a refused write settles it too
        return;
      }
      case "subscribe-events":
        if (deps.events) deps.events.subscribe(session, message);
        else session.sendControl({ type: "events-error", subscription: message.subscription, code: ErrorCode.UnknownMessage, message: "event subscriptions are not available" });
        return;
      case "unsubscribe-events":
        deps.events?.unsubscribe(session, message.subscription);
        return;
    }
  };

  const handleDoc = (session: ClientSession, frame: DocFrame, bytes: Uint8Array, owned: boolean): void => {
    const { conversation, message } = frame;
    switch (message.type) {
      case "sync-step1":
        // uWS reuses the receive buffer after this callback returns: copy before anything async.
        hub
          .syncStep1(session, conversation, owned ? message.stateVector : message.stateVector.slice())
          .then((frame) => frame && session.send(frame))
          .catch((error: unknown) => fail(session, error, "frame", conversation));
        return;
      case "update":
      case "sync-step2": {
        // uWS reuses the receive buffer after this callback: keep our own copy. An `update` frame
        // is already exactly what subscribers should receive, so publish the copy as-is.
        const frameCopy = owned ? bytes : bytes.slice();
        const offset = message.update.byteOffset - bytes.byteOffset;
        const update = frameCopy.subarray(offset, offset + message.update.length);
        const envelope = message.type === "update" ? frameCopy : undefined;
        try {
          hub.write(session, conversation, update, { envelope, catchUp: message.type === "sync-step2" }).then(
            (seq) => session.sendControl({ type: "ack", conversation, seq }),
            (error: unknown) => fail(session, error, "write", conversation),
          );
        } catch (error) {
          fail(session, error, "write", conversation);
        }
        return;
      }
      case "awareness": {
        const frameCopy = owned ? bytes : bytes.slice();
        const offset = message.update.byteOffset - bytes.byteOffset;
        try {
          const { foreign } = hub.awareness(session, conversation, frameCopy.subarray(offset, offset + message.update.length), frameCopy);
          if (foreign > 0) {
            session.sendError(ErrorCode.Forbidden, "awareness states of other connections were ignored", { request: "awareness", conversation });
          }
        } catch (error) {
          fail(session, error, "awareness", conversation);
        }
        return;
      }
    }
  };

  /** `owned`: the bytes are already our copy (queued before auth), not uWS's buffer. */
  function handleFrame(session: ClientSession, bytes: Uint8Array, owned: boolean): void {
    let frame: ReturnType<typeof decodeClientFrame>;
    try {
      frame = decodeClientFrame(bytes);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === ErrorCode.UnknownMessage) {
        session.sendError(error.code, error.message, { request: "frame" });
        return;
      }
      fail(session, error, "frame");
      return;
    }
    if (frame.kind === "control") handleControl(session, frame.message);
    else handleDoc(session, frame, bytes, owned);
  }

  app.ws<SocketData>("/ws", {
    maxPayloadLength: limits.maxFrameBytes * 2,
    maxBackpressure: hardBackpressureLimit(limits.maxBackpressureBytes),
    closeOnBackpressureLimit: 1, // typed as a number in this build; read as a boolean
    idleTimeout: limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const origin = req.getHeader("origin");
      const remote = clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedForOf(req), deps.proxyTrust);
      if (!originAllowed(origin, deps.allowedOrigins)) {
        logger.info({ remote, origin, status: 403 }, "socket origin refused");
        res.writeStatus("403 Forbidden").end(originRefusal(origin));
        return;
      }
      if (refuseWhenFull(res, deps.connections, remote)) return;
      const data: SocketData = { session: new ClientSession("parley", remote, limits.maxFramesPerSecond, limits.maxBackpressureBytes, deps.traffic) };
      res.upgrade(
        data,
        req.getHeader("sec-websocket-key"),
        req.getHeader("sec-websocket-protocol"),
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },
    open: (ws) => {
      const { session } = ws.getUserData();
      session.socket = ws;
      hub.opened(session);
      takeSlot(session, deps.connections);
      logger.info({ session: session.id, remote: session.remoteAddress }, "socket opened");
    },
    message: (ws, message, isBinary) => {
      const { session } = ws.getUserData();
      if (!session.socket) return;
      deps.traffic?.received("parley");
      const bytes = new Uint8Array(message);
      if (!isBinary) {
        session.sendError(ErrorCode.MalformedFrame, "text frames are not part of the protocol", { request: "frame" });
        session.close(CloseCode.ProtocolViolation, "text frame");
        return;
      }
      if (bytes.length > limits.maxFrameBytes) {
        session.sendError(ErrorCode.FrameTooLarge, `frame exceeds ${limits.maxFrameBytes} bytes`, { request: "frame" });
        session.close(CloseCode.FrameTooLarge, "frame too large");
        return;
      }
      if (!session.takeFrameBudget(monotonicClock())) {
        session.sendError(ErrorCode.RateLimited, "too many frames; slow down", { request: "frame" });
        session.close(CloseCode.RateLimited, "rate limited");
        return;
      }
      if (session.phase === "ready") {
        handleFrame(session, bytes, false);
        return;
      }
      // Before authentication: only an `auth` frame is processed; anything after it waits.
      session.preAuthBytes += bytes.length;
      if (session.preAuthBytes > limits.maxPreAuthBytes) {
        session.sendError(ErrorCode.NotAuthenticated, "too much data before authentication", { request: "frame" });
        session.close(CloseCode.ProtocolViolation, "too much data before authentication");
        return;
      }
      if (session.phase === "authenticating") {
        session.preAuthQueue ??= [];
        session.preAuthQueue.push(bytes.slice());
        return;
      }
      let frame: ReturnType<typeof decodeClientFrame> | null = null;
      try {
        frame = decodeClientFrame(bytes);
      } catch {
        // reported below as "not an auth frame"
      }
      if (frame?.kind !== "control" || frame.message.type !== "auth") {
        session.sendError(ErrorCode.NotAuthenticated, "the first frame must be auth", { request: "frame" });
        session.close(CloseCode.ProtocolViolation, "first frame must be auth");
        return;
      }
      void authenticate(session, frame.message.token, frame.message.protocol);
    },
    close: (ws, code) => {
      const { session } = ws.getUserData();
      logger.info({ session: session.id, ...principalLogFields(session.principal), closeCode: code }, "socket closed");
      giveSlot(session, deps.connections);
      deps.events?.closed(session);
      hub.closed(session);
    },
  });
}

