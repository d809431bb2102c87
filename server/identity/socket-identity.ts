// What a socket carries once its credential is accepted: the principal (http/principal.ts), the
// same one the HTTP API and the event stream resolve, and until when it holds. Sockets have no
// enrolment-only routes, so a missing second factor refuses the socket outright.

import { ErrorCode } from "../../protocol/index.ts";
import type { AnyPrincipal, SocketAuthentication } from "../http/principal.ts";
import { ParleyError } from "../platform/errors.ts";

/** How long a socket authenticated with an API key stays open before it must authenticate again. */
const API_KEY_SOCKET_TTL_MS = 3600_000;

/** A socket authenticated as `principal`; throws when the principal must enrol a second factor first. */
export function socketAuthentication(principal: AnyPrincipal, now: () => number): SocketAuthentication {
  switch (principal.kind) {
    case "apiKey":
      return { principal, expiresAt: now() + API_KEY_SOCKET_TTL_MS };
    case "user":
      if (principal.missingFactor === "security-key") {
        throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires a security key");
      }
      if (principal.missingFactor === "two-factor") {
        throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires two-factor authentication");
      }
      return { principal, expiresAt: principal.token.expiresAt };
    case "conversationToken":
    case "support":
      return { principal, expiresAt: principal.token.expiresAt };
  }
}
