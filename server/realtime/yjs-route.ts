// y-websocket compatibility (/yjs/<conversation>?token=<jwt>): plain y-protocols messages, one
// conversation per socket, so an existing app using y-websocket's WebsocketProvider works
// unchanged. Same hub, same write path, same audit and permissions as the Parley route; the token
// is checked before the upgrade because y-websocket clients start syncing as soon as they open.
// A refusal is an upgrade closed at once with a 44xx code (after a y-protocols "permission
// denied" message): y-websocket stops reconnecting on 4400-4499, while an HTTP 401/403 would
// make it retry forever.

import * as encoding from "lib0/encoding";
import { CloseCode, decodeDocMessage, ErrorCode, isConversationId, type Role } from "../../protocol/index.ts";
import type { TokenIdentity } from "../auth/tokens.ts";
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
import { ClientSession, hardBackpressureLimit, type SocketData } from "./client-session.ts";
import { giveSlot, refuseWhenFull, takeSlot } from "./connection-slots.ts";
import type { RealtimeHub } from "./realtime-hub.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Dependencies of the y-websocket route. */
export interface YjsRouteDeps {
  hub: RealtimeHub;
  /** Verifies a token and checks the identity may connect from this address now. */
  authenticate(token: string, ip: string): Promise<TokenIdentity>;
  /** The identity's role in a conversation now (null: it may not see it). */
  resolveRole(identity: TokenIdentity, conversation: string): Promise<Role | null>;
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
  /** Set when the connection is refused: it is closed with this code right after opening. */
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
    logger.info({ session: session.id, user: session.identity?.user, org: session.identity?.org, conversation, role: result.role }, "y-websocket joined");
    if (result.role === "writer") {
      session.sendDoc(conversation, { type: "sync-step1", stateVector: result.doc.stateVector() });
    }
    const awareness = hub.awarenessSnapshot(conversation);
    if (awareness) session.sendDoc(conversation, { type: "awareness", update: awareness });
  };

  app.ws<YjsSocketData>("/yjs/*", {
    maxPayloadLength: limits.maxFrameBytes,
    maxBackpressure: hardBackpressureLimit(limits.maxBackpressureBytes),
    closeOnBackpressureLimit: 1, // typed as a number in this build; read as a boolean
    idleTimeout: limits.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const rawConversation = req.getUrl().slice("/yjs/".length);
      const rawQuery = req.getQuery() ?? "";
      const origin = req.getHeader("origin");
      const key = req.getHeader("sec-websocket-key");
      const protocol = req.getHeader("sec-websocket-protocol");
      const extensions = req.getHeader("sec-websocket-extensions");
      const remote = clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), forwardedForOf(req), deps.proxyTrust);
      if (refuseWhenFull(res, deps.connections, remote)) return;
      const session = new ClientSession("yjs", remote, limits.maxFramesPerSecond, limits.maxBackpressureBytes, deps.traffic);
      const accept = (conversation: string, refusal: YjsSocketData["refusal"]) => {
        if (aborted) return;
        res.cork(() => res.upgrade<YjsSocketData>({ session, conversation, refusal }, key, protocol, extensions, context));
      };
      const refuse = (code: number, reason: string) => accept("", { code, reason });
      if (!originAllowed(origin, deps.allowedOrigins)) {
        logger.info({ remote, origin, closeCode: CloseCode.Forbidden }, "y-websocket origin refused");
        return refuse(CloseCode.Forbidden, originRefusal(origin));
      }
      let conversation: string;
      let token: string;
      try {
        conversation = decodeUrlComponent(rawConversation, "the room name");
        token = parseQueryString(rawQuery).get("token") ?? "";
      } catch (error) {
        return refuse(CloseCode.ProtocolViolation, describeError(error).message);
      }
      if (!isConversationId(conversation)) return refuse(CloseCode.ProtocolViolation, "invalid conversation id");
      const authorise = async (): Promise<YjsSocketData["refusal"]> => {
        let identity: TokenIdentity;
        try {
          identity = await deps.authenticate(token, remote);
        } catch (error) {
          const { code, message } = describeError(error);
          logger.info({ session: session.id, code, remote, closeCode: CloseCode.AuthFailed }, "y-websocket authentication failed");
          return { code: CloseCode.AuthFailed, reason: message };
        }
        const role = await deps.resolveRole(identity, conversation);
        if (!role) {
          logger.info({ session: session.id, user: identity.user, org: identity.org, conversation, closeCode: CloseCode.Forbidden }, "y-websocket join refused");
          return { code: CloseCode.Forbidden, reason: "no access to this conversation" };
        }
        session.identity = identity;
        session.phase = "ready";
        logger.info({ session: session.id, user: identity.user, org: identity.org, conversation, role, remote }, "y-websocket authenticated");
        return null;
      };
      authorise().then(
        (refusal) => accept(conversation, refusal),
        (error: unknown) => {
          logger.error({ err: error, session: session.id }, "y-websocket access check failed");
          accept(conversation, { code: CloseCode.TryAgainLater, reason: "access could not be checked; retry" });
        },
      );
    },
    open: (ws) => {
      const { session, conversation, refusal } = ws.getUserData();
      if (refusal) {
        if (refusal.code !== CloseCode.TryAgainLater) ws.send(permissionDenied(refusal.reason), true);
        ws.end(refusal.code, refusal.reason.slice(0, 120));
        return;
      }
      session.socket = ws;
      hub.opened(session);
      takeSlot(session, deps.connections);
      if (!session.socket) return;
      start(session, conversation).catch((error: unknown) => {
        session.close(CloseCode.TryAgainLater, describeError(error).message);
      });
    },
    message: (ws, message) => {
      const { session, conversation } = ws.getUserData();
      if (!session.socket) return;
      deps.traffic?.received("yjs");
      if (!session.takeFrameBudget(monotonicClock())) {
        session.close(CloseCode.RateLimited, "rate limited");
        return;
      }
      const bytes = new Uint8Array(message);
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
          const update = decoded.update.slice();
          try {
            hub.write(session, conversation, update, { catchUp: decoded.type === "sync-step2" }).catch((error: unknown) => dropWrite(session, error, conversation));
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
    },
    close: (ws, code) => {
      const { session, refusal, conversation } = ws.getUserData();
      if (refusal) return;
      giveSlot(session, deps.connections);
      logger.info({ session: session.id, user: session.identity?.user, org: session.identity?.org, conversation, closeCode: code }, "y-websocket closed");
      hub.closed(session);
    },
  });
}
