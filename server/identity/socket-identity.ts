// What a socket carries once its credential is accepted: the principal (http/principal.ts) as
// the token identity the realtime layer checks joins, expiry and revalidation against. Sockets
// have no enrolment-only routes, so a missing second factor refuses the socket outright.

import { ErrorCode } from "../../protocol/index.ts";
import type { TokenIdentity } from "../auth/tokens.ts";
import type { AnyPrincipal } from "../http/principal.ts";
import { ParleyError } from "../platform/errors.ts";

/** How long a socket authenticated with an API key stays open before it must authenticate again. */
const API_KEY_SOCKET_TTL_MS = 3600_000;

/** The identity a socket authenticated as `principal` carries; throws when the principal must enrol a second factor first. */
export function socketIdentity(principal: AnyPrincipal, now: () => number): TokenIdentity {
  switch (principal.kind) {
    case "apiKey":
      return {
        user: `key:${principal.keyId}`,
        org: principal.orgId,
        grants: new Map(),
        expiresAt: now() + API_KEY_SOCKET_TTL_MS,
        tokenId: `key:${principal.keyId}`,
        sessionFamily: null,
        scoped: false,
        supportGrant: null,
        apiKey: { keyId: principal.keyId, scopes: principal.scopes },
      };
    case "user":
      if (principal.missingFactor === "security-key") {
        throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires a security key");
      }
      if (principal.missingFactor === "two-factor") {
        throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires two-factor authentication");
      }
      return principal.token;
    case "conversationToken":
    case "support":
      return principal.token;
  }
}
