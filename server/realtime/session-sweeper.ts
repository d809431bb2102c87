// One timer for every connection instead of one per connection: closes sockets that did not
// authenticate in time and sessions whose token expired without being renewed.

import { CloseCode, ErrorCode } from "../../protocol/index.ts";
import type { RealtimeHub } from "./realtime-hub.ts";

/**
 * Closes overdue connections; called about once a second. `now` is the wall clock tokens expire
 * by; `elapsedNow` the monotonic clock sessions were opened on (the authentication timeout is a duration).
 */
export function sweepSessions(hub: RealtimeHub, authTimeoutMs: number, now: number, elapsedNow: number): void {
  for (const session of hub.sessions) {
    if (session.phase === "ready") {
      if (session.principal && session.expiresAt <= now) {
        session.sendError(ErrorCode.TokenExpired, "token expired; reconnect with a fresh one", { request: "auth" });
        session.close(CloseCode.SessionExpired, "token expired");
      }
    } else if (session.phase !== "closed" && elapsedNow - session.openedAt > authTimeoutMs) {
      session.sendError(ErrorCode.AuthTimeout, "no authentication in time", { request: "auth" });
      session.close(CloseCode.AuthTimeout, "authentication timeout");
    }
  }
}
