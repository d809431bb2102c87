// Who is calling, and the one way to find out: every entry point (the HTTP router, the event
// stream, the /ws and /yjs sockets) turns the credential it was shown into a Principal here, so a
// new kind of credential is added in one place. Resolved afresh from the credential and the
// directory each time, so a revoked key, a revoked session or a removed membership stops working
// on the next request (sockets re-check with Identity.stillValid).

import { createHash, timingSafeEqual } from "node:crypto";
import { ErrorCode } from "../../protocol/index.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import { type HostTokenVerifier, verifyAnyToken } from "../auth/host-tokens.ts";
import type { TokenIdentity, TokenSettings } from "../auth/tokens.ts";
import type { AccessDirectory } from "../directory/access-directory.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { SessionDirectory } from "../directory/session-directory.ts";
import type { MemberRole, Organisation, SupportGrant } from "../directory/directory-types.ts";
import { ParleyError } from "../platform/errors.ts";
import { ipAllowed } from "./ip-allowlist.ts";
import type { Clock } from "../platform/clock.ts";

/** A signed-in person acting for one organisation (a Parley access token or a host application's token). */
export interface UserPrincipal {
  kind: "user";
  userId: string;
  orgId: string;
  role: MemberRole;
  /** The refresh-token family the access token belongs to (its "session"). */
  sessionFamily: string | null;
  /** The organisation requires two-factor and this person has not enrolled: only enrolment is open. */
  mustEnrolTwoFactor: boolean;
  /** Which second factor the organisation requires and this person lacks (null: none missing). */
  missingFactor: "security-key" | "two-factor" | null;
  /**
   * A session opened by an invitation link for an account with other credentials: it reaches
   * this conversation only (the router refuses every route not open to such sessions, and acts
   * with the `member` role whatever the account's role is).
   */
  conversationScope: string | null;
  /** The verified token itself (expiry, token id), for sockets. */
  token: TokenIdentity;
}

/** An organisation's API key (a partner system). */
export interface ApiKeyPrincipal {
  kind: "apiKey";
  keyId: string;
  orgId: string;
  scopes: string[];
}

/**
 * A token that lists its conversations itself (`conv` claim): a development token or a capability
 * token a host application minted. Its holder is no member of an organisation: sockets only.
 */
export interface ConversationTokenPrincipal {
  kind: "conversationToken";
  token: TokenIdentity;
}

/** An operator's support token: read-only on one conversation while its recorded grant is live. Sockets only. */
export interface SupportPrincipal {
  kind: "support";
  grant: SupportGrant;
  token: TokenIdentity;
}

/** Any caller a credential can name. */
export type AnyPrincipal = UserPrincipal | ApiKeyPrincipal | ConversationTokenPrincipal | SupportPrincipal;

/** The callers the HTTP API (routes and the event stream) admits. */
export type Principal = UserPrincipal | ApiKeyPrincipal;

/** The kinds the HTTP API admits; tokens that list conversations open sockets only. */
export const HTTP_PRINCIPALS = ["user", "apiKey"] as const satisfies readonly Principal["kind"][];

/** Every kind: what the sockets admit. */
export const SOCKET_PRINCIPALS = ["user", "apiKey", "conversationToken", "support"] as const satisfies readonly AnyPrincipal["kind"][];

/**
 * The audit actor id of a principal: the user id, or `key:<id>` for API keys; for a token that
 * lists its conversations, its subject. What writes, logs and awareness claims name it by.
 */
export function actorId(principal: AnyPrincipal): string {
  switch (principal.kind) {
    case "user":
      return principal.userId;
    case "apiKey":
      return `key:${principal.keyId}`;
    case "conversationToken":
    case "support":
      return principal.token.user;
  }
}

/** The organisation a principal acts for (a token that lists its conversations: its `org` claim). */
export function actingOrg(principal: AnyPrincipal): string {
  return principal.kind === "user" || principal.kind === "apiKey" ? principal.orgId : principal.token.org;
}

/**
 * What a socket carries once its credential is accepted: the principal (the same one the HTTP
 * API resolves) and when the socket must have renewed it (ms since the epoch).
 */
export interface SocketAuthentication {
  principal: AnyPrincipal;
  expiresAt: number;
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
  directory: Pick<AccessDirectory, "getApiKey" | "touchApiKey" | "getSupportGrant"> &
    Pick<AccountDirectory, "getUser" | "listWebauthnCredentials"> &
    Pick<OrganisationDirectory, "getMembership" | "getOrganisation"> &
    Pick<SessionDirectory, "isFamilyRevoked">;
  /** Records an API key's use in its organisation's audit chain (deduplicated by the recorder); a failure fails the request. */
  recordApiKeyUse?: (orgId: string, keyId: string) => Promise<void>;
  /** Records (log and audit chains) that a live support grant was used from `ip`; a failure fails the connection. */
  recordSupportUse?: (grant: SupportGrant, ip: string) => Promise<void>;
  /** The clock tokens and support grants expire by and API key use is stamped with. */
  now: Clock;
}

const unauthorized = () => new ParleyError(ErrorCode.InvalidCredentials, "missing or invalid credentials");

/** Resolves `Authorization: Bearer …` into a principal the HTTP API admits, checking the directory now. */
export async function resolvePrincipal(authorization: string, ip: string, deps: PrincipalDeps): Promise<Principal> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!match) throw unauthorized();
  return authenticateCredential(match[1], ip, deps, HTTP_PRINCIPALS);
}

/**
 * Turns a presented credential (an API key `pk_…`, a Parley access token, a host application's
 * token, a development or capability token, a support token) into a principal, if its kind is one
 * the entry point admits; refusals carry the same codes and messages at every entry point.
 */
export async function authenticateCredential<K extends AnyPrincipal["kind"]>(
  credential: string,
  ip: string,
  deps: PrincipalDeps,
  admit: readonly K[],
): Promise<Extract<AnyPrincipal, { kind: K }>> {
  const principal = credential.startsWith(API_KEY_PREFIX) ? await apiKeyPrincipal(credential, ip, deps) : await tokenPrincipal(credential, ip, deps, admit);
  return principal as Extract<AnyPrincipal, { kind: K }>;
}

async function apiKeyPrincipal(credential: string, ip: string, deps: PrincipalDeps): Promise<ApiKeyPrincipal> {
  const [id, secret] = credential.slice(API_KEY_PREFIX.length).split(".");
  const key = id && secret ? await deps.directory.getApiKey(id) : null;
  if (!key || key.revokedAt !== null) throw unauthorized();
  const expected = Buffer.from(key.secretHash, "hex");
  const actual = Buffer.from(secretHash(secret), "hex");
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw unauthorized();
  void deps.directory.touchApiKey(key.id, deps.now()).catch(() => undefined);
  await deps.recordApiKeyUse?.(key.orgId, key.id);
  requireAllowedAddress(await deps.directory.getOrganisation(key.orgId), ip);
  return { kind: "apiKey", keyId: key.id, orgId: key.orgId, scopes: key.scopes };
}

async function tokenPrincipal(credential: string, ip: string, deps: PrincipalDeps, admit: readonly AnyPrincipal["kind"][]): Promise<AnyPrincipal> {
  const token = await verifyAnyToken(deps.keys, deps.tokens, deps.hostTokens, credential, deps.now);
  const kind = token.supportGrant ? "support" : token.scoped ? "conversationToken" : "user";
  if (!admit.includes(kind)) {
    // Development, capability and support tokens list their conversations; their holders are
    // not members of an organisation, so the organisation-wide HTTP API is not theirs.
    throw new ParleyError(
      ErrorCode.InvalidToken,
      "this token lists conversations (a development or support token): it opens sockets only; the HTTP API needs a sign-in access token, a host-application token or an API key",
    );
  }
  if (kind === "support") return supportPrincipal(token, ip, deps);
  if (kind === "conversationToken") {
    requireAllowedAddress(await deps.directory.getOrganisation(token.org), ip);
    return { kind, token };
  }
  if (token.sessionFamily && (await deps.directory.isFamilyRevoked(token.sessionFamily))) {
    throw new ParleyError(ErrorCode.InvalidToken, "this session was signed out");
  }
  const role = await deps.directory.getMembership(token.org, token.user);
  if (!role) throw new ParleyError(ErrorCode.InvalidToken, "the token's person is not (or no longer) a member of its organisation");
  const conversationScope = token.conversationScope ?? null;
  const org = await deps.directory.getOrganisation(token.org);
  requireAllowedAddress(org, ip);
  const missingFactor = await missingSecondFactor(org, token.user, deps);
  return {
    kind: "user",
    userId: token.user,
    orgId: token.org,
    role: conversationScope ? "member" : role,
    sessionFamily: token.sessionFamily,
    mustEnrolTwoFactor: missingFactor !== null,
    missingFactor,
    conversationScope,
    token,
  };
}

async function supportPrincipal(token: TokenIdentity, ip: string, deps: PrincipalDeps): Promise<SupportPrincipal> {
  const grant = await liveSupportGrant(token.supportGrant ?? "", deps);
  if (!grant) throw new ParleyError(ErrorCode.InvalidToken, "this support grant was revoked or has expired");
  await deps.recordSupportUse?.(grant, ip);
  return { kind: "support", grant, token };
}

/** A support grant that is recorded, unrevoked and unexpired, or null. */
export async function liveSupportGrant(grantId: string, deps: Pick<PrincipalDeps, "directory" | "now">): Promise<SupportGrant | null> {
  const grant = await deps.directory.getSupportGrant(grantId);
  return grant && !grant.revokedAt && grant.expiresAt > deps.now() ? grant : null;
}

/** The second factor the person's organisation requires and they lack: a security key first, then two-factor. */
async function missingSecondFactor(org: Organisation | null, userId: string, deps: PrincipalDeps): Promise<UserPrincipal["missingFactor"]> {
  if (org?.requireSecurityKey && (await deps.directory.listWebauthnCredentials(userId)).length === 0) return "security-key";
  if (org?.require2fa && !(await deps.directory.getUser(userId))?.totpEnabled) return "two-factor";
  return null;
}

/** An organisation's IP allowlist holds for every credential acting for it. */
function requireAllowedAddress(org: Organisation | null, ip: string): void {
  if (org && !ipAllowed(ip, org.ipAllowlist)) {
    throw new ParleyError(ErrorCode.IpNotAllowed, "this organisation does not allow access from your address");
  }
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
