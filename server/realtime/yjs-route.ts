// y-websocket compatibility (/yjs/<conversation>?token=<jwt>): plain y-protocols messages, one
// conversation per socket, so an existing app using y-websocket's WebsocketProvider works
// unchanged. Same hub, same write path, same audit and permissions as the Parley route.
// The upgrade completes at once, inside uWS's own upgrade callback, and the token is checked right
// after the socket opens; what the client sends meanwhile (y-websocket clients start syncing as
// soon as they open) waits in order and is handled once the socket is admitted. An upgrade after
// an await needs res.cork(), and in this uWS build cork() can misread a just-upgraded socket as an
// HTTP connection to close and drop it (uNetworking/uWebSockets#1929): clients saw 1006 before
// their first message, now and then, under load. test/yjs-upgrade.test.ts holds the route to it.
// A refusal is a socket closed at once with a 44xx code (after a y-protocols "permission
// denied" message): y-websocket stops reconnecting on 4400-4499, while an HTTP 401/403 would
// make it retry forever.

import * as encoding from "lib0/encoding";
import { CloseCode, decodeDocMessage, ErrorCode, isConversationId, type Role } from "../../protocol/index.ts";
import type { AnyPrincipal, SocketAuthentication } from "../http/principal.ts";
import type { Config } from "../platform/config.ts";
import { describeError } from "../platform/errors.ts";
import { REFUSED_UPDATE_CODES } from "../writes/update-validator.ts";
import type { Logger } from "../platform/logger.ts";
import type { ConnectionLimits } from "../limits/connection-limits.ts";
import { clientAddress, forwardedForOf, type ProxyTrust } from "../platform/client-address.ts";
import { originAllowed, originRefusal } from "../platform/origin-policy.ts";
import { decodeUrlComponent, parseQueryString } from "../platform/url-decoding.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import { ClientSession, hardBackpressureLimit, principalLogFields, type SocketData } from "./client-session.ts";
import { giveSlot, refuseWhenFull, takeSlot } from "./connection-slots.ts";
import type { RealtimeHub } from "./realtime-hub.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Dependencies of the y-websocket route. */
export interface YjsRouteDeps {
  hub: RealtimeHub;
  /** Verifies a token and checks the identity may connect from this address now. */
  authenticate(token: string, ip: string): Promise<SocketAuthentication>;
  /** The principal's role in a conversation now (null: it may not see it). */
  resolveRole(principal: AnyPrincipal, conversation: string): Promise<Role | null>;
  limits: Config["limits"];
  allowedOrigins: readonly string[];
  /** Which proxies may name the client (the same computation as HTTP; allowlists and limits use it). */
  proxyTrust: ProxyTrust;
  logger: Logger;
  /** Per-address cap on open sockets; none when absent. */
  connections?: ConnectionLimits;
  /** Counts frames in and out (metrics). */
  traffic?: SocketTraffic;
}

interface YjsSocketData extends SocketData {
  conversation: string;
  /** The token from the query string, checked once the socket is open. */
  token: string;
  /** Set when the request itself is refused (origin, room name): closed with this code on opening. */
  refusal: { code: number; reason: string } | null;
}

/** y-protocols "auth" message (type 2) saying permission denied: WebsocketProvider logs it. */
function permissionDenied(reason: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 2);
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarString(encoder, reason);
  return encoding.toUint8Array(encoder);
}

/** Registers the /yjs/:conversation route on the app. */
export function registerYjsRoute(app: UWS.TemplatedApp, deps: YjsRouteDeps): void {
  const { hub, limits, logger } = deps;

  const dropWrite = (session: ClientSession, error: unknown, conversation: string): void => {
    const { code, message } = describeError(error);
    logger.info({ session: session.id, conversation, code }, "y-websocket write refused");
    if (code === ErrorCode.ReadOnly || REFUSED_UPDATE_CODES.has(code)) {
      session.send(permissionDenied(message));
    } else {
      // Store trouble or shutdown: make the provider reconnect and resync, so nothing is lost.
      session.close(code === ErrorCode.ShuttingDown ? CloseCode.ServiceRestart : CloseCode.TryAgainLater, message);
    }
  };

  const start = async (session: ClientSession, conversation: string): Promise<void> => {
    const result = await hub.join(session, conversation);
    if (!result) return;
    logger.info({ session: session.id, ...principalLogFields(session.principal), conversation, role: result.role }, "y-websocket joined");
    if (result.role === "writer") {
      session.sendDoc(conversation, { type: "sync-step1", stateVector: result.doc.stateVector() });
    }
    const awareness = hub.awarenessSnapshot(conversation);
    if (awareness) session.sendDoc(conversation, { type: "awareness", update: awareness });
  };

  /** Handles one y-protocols message of an admitted socket. */
  const handleMessage = (session: ClientSession, conversation: string, bytes: Uint8Array): void => {
    let decoded: ReturnType<typeof decodeDocMessage>;
    try {
      decoded = decodeDocMessage(bytes);
    } catch (error) {
      session.close(CloseCode.ProtocolViolation, describeError(error).message);
      return;
    }
    switch (decoded.type) {
      case "sync-step1":
        hub
          // uWS reuses the receive buffer after this callback returns: copy before anything async.
          .syncStep1(session, conversation, decoded.stateVector.slice())
          .then((frame) => frame && session.send(frame))
          .catch((error: unknown) => session.close(CloseCode.ProtocolViolation, describeError(error).message));
        return;
      case "update":
      case "sync-step2": {
        // uWS reuses the receive buffer after this callback: one copy of the frame, the update a
        // view into it. An update message is already exactly what the room's other y-websocket
        // clients should receive (decoded whole, nothing trailing), so it is published as is.
        const frame = bytes.slice();
        const offset = decoded.update.byteOffset - bytes.byteOffset;
        const update = frame.subarray(offset, offset + decoded.update.length);
        const bareFrame = decoded.type === "update" ? frame : undefined;
        try {
          hub.write(session, conversation, update, { bareFrame, catchUp: decoded.type === "sync-step2" }).catch((error: unknown) => dropWrite(session, error, conversation));
        } catch (error) {
          dropWrite(session, error, conversation);
        }
        return;
      }
      case "awareness":
        try {
          hub.awareness(session, conversation, decoded.update.slice());
        } catch (error) {
          logger.info({ session: session.id, code: describeError(error).code }, "awareness refused");
        }
        return;
    }
  };

  // What a client may send before its token is checked: its opening messages and one full frame
  // of offline edits, so a provider reconnecting with local changes is never refused for them.
  const preAdmissionBytes = limits.maxPreAuthBytes + limits.maxFrameBytes;

  /** Checks the token and the role: null when admitted, else why not (the close code and reason). */
  const authorise = async (session: ClientSession, token: string, conversation: string): Promise<YjsSocketData["refusal"]> => {
    let authenticated: SocketAuthentication;
    try {
      authenticated = await deps.authenticate(token, session.remoteAddress);
    } catch (error) {
      const { code, message } = describeError(error);
      logger.info({ session: session.id, code, remote: session.remoteAddress, closeCode: CloseCode.AuthFailed }, "y-websocket authentication failed");
      return { code: CloseCode.AuthFailed, reason: message };
    }
    const { principal } = authenticated;
    const role = await deps.resolveRole(principal, conversation);
    if (!role) {
      logger.info({ session: session.id, ...principalLogFields(principal), conversation, closeCode: CloseCode.Forbidden }, "y-websocket join refused");
      return { code: CloseCode.Forbidden, reason: "no access to this conversation" };
    }
    session.principal = principal;
    session.expiresAt = authenticated.expiresAt;
    logger.info({ session: session.id, ...principalLogFields(principal), conversation, role, remote: session.remoteAddress }, "y-websocket authenticated");
    return null;
  };

  /** Closes a socket refused before admission; the provider is told why unless it should retry. */
  const refuseOpen = (session: ClientSession, ws: UWS.WebSocket<SocketData>, refusal: NonNullable<YjsSocketData["refusal"]>): void => {
    if (refusal.code !== CloseCode.TryAgainLater) ws.send(permissionDenied(refusal.reason), true);
    if (session.socket) session.close(refusal.code, refusal.reason);
    else ws.end(refusal.code, refusal.reason.slice(0, 120));
  };

  /** Admits a checked socket (joins, then handles what it sent meanwhile, in order) or refuses it. */
  const admit = (session: ClientSession, conversation: string, refusal: YjsSocketData["refusal"]): void => {
    const ws = session.socket;
    if (!ws) return; // closed while its token was checked
    const queued = session.preAuthQueue ?? [];
    session.preAuthQueue = null;
    if (refusal) {
      refuseOpen(session, ws, refusal);
      return;
    }
    session.phase = "ready";
    start(session, conversation).catch((error: unknown) => {
      session.close(CloseCode.TryAgainLater, describeError(error).message);
    });
    // The join is registered synchronously by start(): what the client pipelined waits for its role.
    for (const bytes of queued) {
      if (!session.socket) return;
      handleMessage(session, conversation, bytes);
    }
  };

  app.ws<YjsSocketData>("/yjs/*", {
    maxPayloadLength: limits.maxFrameBytes,
    maxBackpressure: hardBackpressureLimit(limits.maxBackpressureBytes),
    closeOnBackpressureLimit: 1, // typed as a number in this build; read as a boolean
    idleTimeout: limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const rawConversation = req.getUrl().slice("/yjs/".length);
      const rawQuery = req.getQuery() ?? "";
      const origin = req.getHeader("origin");
      const remote = clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedForOf(req), deps.proxyTrust);
      if (refuseWhenFull(res, deps.connections, remote)) return;
      const session = new ClientSession("yjs", remote, limits.maxFramesPerSecond, limits.maxBackpressureBytes, deps.traffic);
      let conversation = "";
      let token = "";
      let refusal: YjsSocketData["refusal"] = null;
      if (!originAllowed(origin, deps.allowedOrigins)) {
        logger.info({ remote, origin, closeCode: CloseCode.Forbidden }, "y-websocket origin refused");
        refusal = { code: CloseCode.Forbidden, reason: originRefusal(origin) };
      } else {
        try {
          conversation = decodeUrlComponent(rawConversation, "the room name");
          token = parseQueryString(rawQuery).get("token") ?? "";
          if (!isConversationId(conversation)) refusal = { code: CloseCode.ProtocolViolation, reason: "invalid conversation id" };
        } catch (error) {
          refusal = { code: CloseCode.ProtocolViolation, reason: describeError(error).message };
        }
      }
      const data: YjsSocketData = { session, conversation: refusal ? "" : conversation, token, refusal };
      res.upgrade<YjsSocketData>(
        data,
        req.getHeader("sec-websocket-key"),
        req.getHeader("sec-websocket-protocol"),
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },
    open: (ws) => {
      const { session, conversation, token, refusal } = ws.getUserData();
      if (refusal) {
        refuseOpen(session, ws, refusal);
        return;
      }
      session.socket = ws;
      hub.opened(session);
      takeSlot(session, deps.connections);
      if (!session.socket) return;
      session.phase = "authenticating";
      authorise(session, token, conversation).then(
        (refused) => admit(session, conversation, refused),
        (error: unknown) => {
          logger.error({ err: error, session: session.id }, "y-websocket access check failed");
          admit(session, conversation, { code: CloseCode.TryAgainLater, reason: "access could not be checked; retry" });
        },
      );
    },
    message: (ws, message) => {
      const { session, conversation } = ws.getUserData();
      if (!session.socket) return;
      deps.traffic?.received("yjs");
      if (!session.takeFrameBudget(monotonicClock())) {
        session.close(CloseCode.RateLimited, "rate limited");
        return;
      }
      if (session.phase !== "ready") {
        // Sent before the token was checked: kept in order (a copy: uWS reuses the buffer), bounded.
        session.preAuthBytes += message.byteLength;
        if (session.preAuthBytes > preAdmissionBytes) {
          session.close(CloseCode.ProtocolViolation, "too much data before the token was checked");
          return;
        }
        session.preAuthQueue ??= [];
        session.preAuthQueue.push(new Uint8Array(message.slice(0)));
        return;
      }
      handleMessage(session, conversation, new Uint8Array(message));
    },
    close: (ws, code) => {
      const { session, refusal, conversation } = ws.getUserData();
      if (refusal) return;
      giveSlot(session, deps.connections);
      logger.info({ session: session.id, ...principalLogFields(session.principal), conversation, closeCode: code }, "y-websocket closed");
      hub.closed(session);
    },
  });
}
