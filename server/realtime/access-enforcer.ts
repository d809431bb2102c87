// Applies access changes to open connections the moment they happen: a signed-out session's
// sockets close, a person removed from an organisation is disconnected, and everyone joined to a
// conversation whose access changed has their role looked up again (and leaves if it is gone).

import { CloseCode, ErrorCode, type Role } from "../../protocol/index.ts";
import type { AnyPrincipal, UserPrincipal } from "../http/principal.ts";
import type { AccessChange } from "../bus/access-events.ts";
import type { Logger } from "../platform/logger.ts";
import type { ClientSession } from "./client-session.ts";
import type { RealtimeHub } from "./realtime-hub.ts";

/** Acts on access changes for one node's connections. */
export class AccessEnforcer {
  constructor(
    private readonly hub: RealtimeHub,
    private readonly resolveRole: (principal: AnyPrincipal, conversation: string) => Promise<Role | null>,
    private readonly isMember: (orgId: string, userId: string) => Promise<boolean>,
    private readonly logger: Logger,
  ) {}

  apply(change: AccessChange): void {
    for (const session of this.hub.sessions) {
      const principal = session.principal;
      // Tokens that list their conversations carry their own grants; they expire instead of being
      // revoked (support tokens are re-checked by revalidate). API keys: see revalidate too.
      if (!principal || principal.kind === "conversationToken" || principal.kind === "support") continue;
      const person = principal.kind === "user" ? principal : null;
      switch (change.kind) {
        case "session-revoked":
          if (person && person.sessionFamily === change.family) this.disconnect(session, "signed out");
          break;
        case "user-revoked":
          if (person && person.userId === change.userId) this.disconnect(session, "signed out");
          break;
        case "membership-changed":
          if (person && person.userId === change.userId && person.orgId === change.orgId) this.recheckMember(session, person);
          break;
        case "conversation-access-changed":
          if (session.joined.has(change.conversationId)) this.recheck(session, change.conversationId);
          break;
      }
    }
  }

  /**
   * Re-checks connected identities (all, or only support sessions) and disconnects those no
   * longer valid. A safety net for what emits no event here: a `parley support revoke` from
   * another process, or an access change from another node lost on the bus.
   */
  async revalidate(stillValid: (principal: AnyPrincipal) => Promise<boolean>, only?: (principal: AnyPrincipal) => boolean): Promise<void> {
    for (const session of [...this.hub.sessions]) {
      const principal = session.principal;
      if (!principal || (only && !only(principal))) continue;
      if (!(await stillValid(principal))) this.disconnect(session, "access ended");
    }
  }

  private disconnect(session: ClientSession, reason: string): void {
    session.sendError(ErrorCode.InvalidToken, reason, { request: "auth" });
    session.close(CloseCode.Forbidden, reason);
  }

  /** A socket acts for one organisation: without the membership it has nothing left to do. */
  private recheckMember(session: ClientSession, person: UserPrincipal): void {
    this.isMember(person.orgId, person.userId).then(
      (member) => {
        if (!member) this.disconnect(session, "no longer a member of this organisation");
        else for (const conversation of session.joined.keys()) this.recheck(session, conversation);
      },
      (error: unknown) => {
        this.logger.error({ err: error }, "membership recheck failed");
        this.disconnect(session, "access could not be checked");
      },
    );
  }

  /**
   * Looks the session's role in a joined conversation up again: leaves it when the role is gone
   * (or cannot be checked: fail closed), else takes the new role. Also after a token renewal.
   */
  recheck(session: ClientSession, conversation: string): void {
    const principal = session.principal;
    if (!principal) return;
    this.resolveRole(principal, conversation).then(
      (role) => {
        const joined = session.joined.get(conversation);
        if (!joined || joined.role === null) return;
        if (!role) {
          if (this.hub.leave(session, conversation)) {
            session.sendControl({ type: "left", conversation, code: ErrorCode.Forbidden, message: "access revoked" });
            // A y-websocket connection carries one conversation: without it, the socket is done.
            if (session.dialect === "yjs") session.close(CloseCode.Forbidden, "access revoked");
          }
        } else {
          // e.g. writer → observer when the conversation is closed: later writes get ReadOnly.
          joined.role = role;
        }
      },
      (error: unknown) => {
        // When access cannot be checked, fail closed: the client rejoins once it can be.
        this.logger.error({ err: error, conversation }, "access recheck failed");
        if (this.hub.leave(session, conversation)) {
          session.sendControl({ type: "left", conversation, code: ErrorCode.StoreUnavailable, message: "access could not be checked" });
          if (session.dialect === "yjs") session.close(CloseCode.TryAgainLater, "access could not be checked");
        }
      },
    );
  }
}
