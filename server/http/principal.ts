// Who is calling: a person signed in to one organisation (access token), or an organisation's
// API key. Resolved afresh on every request from the bearer credential and the directory, so a
// revoked key, a revoked session or a removed membership stops working on the next request.

import { createHash, timingSafeEqual } from "node:crypto";
import { ErrorCode } from "../../protocol/index.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import { type HostTokenVerifier, verifyAnyToken } from "../auth/host-tokens.ts";
import type { TokenSettings } from "../auth/tokens.ts";
import type { Directory } from "../directory/directory.ts";
import type { MemberRole } from "../directory/directory-types.ts";
import { ParleyError } from "../platform/errors.ts";
import { ipAllowed } from "./ip-allowlist.ts";

/** A signed-in person acting for one organisation. */
export interface UserPrincipal {
  kind: "user";
  userId: string;
  orgId: string;
  role: MemberRole;
  /** The refresh-token family the access token belongs to (its "session"). */
  sessionFamily: string | null;
  /** The organisation requires two-factor and this person has not enrolled: only enrolment is open. */
  mustEnrolTwoFactor: boolean;
  /**
   * A session opened by an invitation link for an account with other credentials: it reaches
   * this conversation only (the router refuses every route not open to such sessions, and acts
   * with the `member` role whatever the account's role is).
   */
  conversationScope: string | null;
}

/** An organisation's API key (a partner system). */
export interface ApiKeyPrincipal {
  kind: "apiKey";
  keyId: string;
  orgId: string;
  scopes: string[];
}

/** Either kind of caller. */
export type Principal = UserPrincipal | ApiKeyPrincipal;

/** The audit actor id of a principal: the user id, or `key:<id>` for API keys. */
export function actorId(principal: Principal): string {
  return principal.kind === "user" ? principal.userId : `key:${principal.keyId}`;
}

/** API keys look like `pk_<id>.<secret>`; only the SHA-256 of the secret is stored. */
export const API_KEY_PREFIX = "pk_";

/** SHA-256 hex of a high-entropy secret (API key secrets, invitation tokens, refresh tokens). */
export function secretHash(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** What resolving a credential needs. */
export interface PrincipalDeps {
  keys: ServerKeys;
  tokens: TokenSettings;
  /** A host application's token verifier, when one is configured. */
  hostTokens?: HostTokenVerifier | null;
  directory: Directory;
  /** Records an API key's use in its organisation's audit chain (deduplicated by the recorder); a failure fails the request. */
  recordApiKeyUse?: (orgId: string, keyId: string) => Promise<void>;
}

const unauthorized = () => new ParleyError(ErrorCode.InvalidCredentials, "missing or invalid credentials");

/** Resolves `Authorization: Bearer …` into a principal, checking the directory now. */
export async function resolvePrincipal(authorization: string, ip: string, deps: PrincipalDeps): Promise<Principal> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match) throw unauthorized();
  const credential = match[1];
  let principal: Principal;
  if (credential.startsWith(API_KEY_PREFIX)) {
    const [id, secret] = credential.slice(API_KEY_PREFIX.length).split(".");
    const key = id && secret ? await deps.directory.getApiKey(id) : null;
    if (!key || key.revokedAt !== null) throw unauthorized();
    const expected = Buffer.from(key.secretHash, "hex");
    const actual = Buffer.from(secretHash(secret), "hex");
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw unauthorized();
    void deps.directory.touchApiKey(key.id, Date.now()).catch(() => undefined);
    await deps.recordApiKeyUse?.(key.orgId, key.id);
    principal = { kind: "apiKey", keyId: key.id, orgId: key.orgId, scopes: key.scopes };
  } else {
    const identity = await verifyAnyToken(deps.keys, deps.tokens, deps.hostTokens, credential);
    if (identity.scoped) {
      // Development, capability and support tokens list their conversations; their holders are
      // not members of an organisation, so the organisation-wide HTTP API is not theirs.
      throw new ParleyError(
        ErrorCode.InvalidToken,
        "this token lists conversations (a development or support token): it opens sockets only; the HTTP API needs a sign-in access token, a host-application token or an API key",
      );
    }
    if (identity.sessionFamily && (await deps.directory.isFamilyRevoked(identity.sessionFamily))) {
      throw new ParleyError(ErrorCode.InvalidToken, "this session was signed out");
    }
    const role = await deps.directory.getMembership(identity.org, identity.user);
    if (!role) throw new ParleyError(ErrorCode.InvalidToken, "the token's person is not (or no longer) a member of its organisation");
    const conversationScope = identity.conversationScope ?? null;
    principal = {
      kind: "user",
      userId: identity.user,
      orgId: identity.org,
      role: conversationScope ? "member" : role,
      sessionFamily: identity.sessionFamily,
      mustEnrolTwoFactor: false,
      conversationScope,
    };
  }
  const org = await deps.directory.getOrganisation(principal.orgId);
  if (principal.kind === "user" && org?.require2fa) {
    principal.mustEnrolTwoFactor = !(await deps.directory.getUser(principal.userId))?.totpEnabled;
  }
  // A security key specifically (not just any second factor): until one is registered, only enrolment is open.
  if (principal.kind === "user" && org?.requireSecurityKey && !principal.mustEnrolTwoFactor) {
    principal.mustEnrolTwoFactor = (await deps.directory.listWebauthnCredentials(principal.userId)).length === 0;
  }
  if (org && !ipAllowed(ip, org.ipAllowlist)) {
    throw new ParleyError(ErrorCode.IpNotAllowed, "this organisation does not allow access from your address");
  }
  return principal;
}

/** The organisation in the path, if the caller acts for it (people and keys of others get 404). */
export function ownOrganisation(principal: Principal, orgId: string): void {
  if (principal.orgId !== orgId) throw new ParleyError(ErrorCode.NotFound, "no such organisation");
}

/** Throws unless the caller is a person with the admin or owner role in the organisation. */
export function requireAdmin(principal: Principal, orgId: string): void {
  ownOrganisation(principal, orgId);
  if (principal.kind !== "user" || (principal.role !== "admin" && principal.role !== "owner")) {
    throw new ParleyError(ErrorCode.InsufficientRole, "this needs the admin or owner role");
  }
}
