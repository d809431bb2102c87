// Access tokens: EdDSA-signed JWTs carrying who the bearer is and which conversations they may
// read or write. Verification pins the algorithm and checks iss, aud and exp, so `alg: none`,
// an HMAC token keyed with the public key, or a token for another deployment all fail.

import { randomUUID } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { ErrorCode, isConversationId, type Role } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import type { Clock } from "../platform/clock.ts";

/** The identity and grants a verified token carries. */
export interface TokenIdentity {
  user: string;
  org: string;
  /** Conversation id → role. */
  grants: ReadonlyMap<string, Role>;
  /** Expiry, milliseconds since the epoch. */
  expiresAt: number;
  tokenId: string;
  /** The refresh-token family (sign-in session) an access token belongs to; null for dev tokens. */
  sessionFamily: string | null;
  /**
   * True when the token itself lists the conversations it may open (`conv` claim: development
   * tokens, or capability tokens a host application mints); false for sign-in tokens, whose
   * access comes from the directory, checked on every join.
   */
  scoped: boolean;
  /** Present on operator support tokens: the recorded grant they were issued for. */
  supportGrant: string | null;
  /**
   * Set when the socket authenticated with an organisation's API key (`user` is then `key:<id>`):
   * its access is the organisation's, limited by the key's scopes, checked on every join.
   */
  apiKey: { keyId: string; scopes: readonly string[] } | null;
  /**
   * Set on sessions opened by an invitation link for an account that has other credentials
   * (`cscope` claim): the one conversation the session may reach, and nothing of the account.
   */
  conversationScope?: string | null;
}

/** What a token is minted for. */
export interface TokenRequest {
  user: string;
  org: string;
  conversations: Record<string, Role>;
  ttlSeconds: number;
}

/** Token settings shared by minting and verification. */
export interface TokenSettings {
  issuer: string;
  audience: string;
}

const ALGORITHM = "EdDSA";
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@+_-]{0,127}$/;
/** Ids in this namespace belong to the server itself (e.g. "parley:system" signs compactions). */
const RESERVED = "parley:";

/** True for a person or organisation id a token may carry (not in the server's reserved namespace). */
export function isIdentityId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id) && !id.startsWith(RESERVED);
}

/** Mints an access token (expiring `ttlSeconds` after `now`). Used by the development CLI and tests until accounts exist. */
export async function mintToken(keys: ServerKeys, settings: TokenSettings, request: TokenRequest, now: Clock): Promise<string> {
  for (const [id, role] of Object.entries(request.conversations)) {
    if (!isConversationId(id)) throw new Error(`invalid conversation id "${id}"`);
    if (role !== "writer" && role !== "observer") throw new Error(`invalid role "${role}"`);
  }
  if (!isIdentityId(request.user)) throw new Error(`invalid user id "${request.user}"`);
  if (!isIdentityId(request.org)) throw new Error(`invalid organisation id "${request.org}"`);
  return signToken(keys, settings, request.user, { org: request.org, conv: request.conversations }, request.ttlSeconds, now);
}

function signToken(keys: ServerKeys, settings: TokenSettings, subject: string, claims: Record<string, unknown>, ttlSeconds: number, now: Clock): Promise<string> {
  const issuedAt = Math.floor(now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALGORITHM, kid: keys.signingKid, typ: "at+jwt" })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(subject)
    .setIssuedAt(issuedAt)
    .setJti(randomUUID())
    .setExpirationTime(issuedAt + ttlSeconds)
    .sign(keys.signingKey);
}

/** Issues a sign-in access token: access to conversations comes from the directory. */
export async function issueAccessToken(
  keys: ServerKeys,
  settings: TokenSettings,
  request: { user: string; org: string; sessionFamily: string; ttlSeconds: number; conversationScope?: string | null },
  now: Clock,
): Promise<string> {
  const claims: Record<string, unknown> = { org: request.org, sid: request.sessionFamily };
  if (request.conversationScope) claims.cscope = request.conversationScope;
  return signToken(keys, settings, request.user, claims, request.ttlSeconds, now);
}

/** Issues an operator support token: read-only on one conversation, tied to a recorded grant. */
export async function issueSupportToken(
  keys: ServerKeys,
  settings: TokenSettings,
  grant: { id: string; operator: string; conversationId: string; ttlSeconds: number },
  now: Clock,
): Promise<string> {
  const claims = { org: "parley-support", conv: { [grant.conversationId]: "observer" }, sup: grant.id };
  return signToken(keys, settings, `support.${grant.operator}`, claims, grant.ttlSeconds, now);
}

/** Verifies a token, expired or not by `now`; throws {@link ParleyError} InvalidToken or TokenExpired. */
export async function verifyToken(keys: ServerKeys, settings: TokenSettings, token: string, now: Clock): Promise<TokenIdentity> {
  let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
  try {
    ({ payload } = await jwtVerify(token, keys.verifyKey, {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ["exp", "sub", "jti"],
      typ: "at+jwt",
      currentDate: new Date(now()),
    }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw new ParleyError(ErrorCode.TokenExpired, "token has expired");
    throw new ParleyError(ErrorCode.InvalidToken, "token is invalid");
  }
  const { sub, org, conv, exp, jti, sid, sup, cscope } = payload as {
    sub: string;
    org?: unknown;
    conv?: unknown;
    exp: number;
    jti: string;
    sid?: unknown;
    sup?: unknown;
    cscope?: unknown;
  };
  if (!isIdentityId(sub) || !isIdentityId(org)) {
    throw new ParleyError(ErrorCode.InvalidToken, "token has an invalid subject or organisation");
  }
  const grants = new Map<string, Role>();
  if (conv !== undefined) {
    if (conv === null || typeof conv !== "object" || Array.isArray(conv)) {
      throw new ParleyError(ErrorCode.InvalidToken, "token has invalid conversation grants");
    }
    for (const [id, role] of Object.entries(conv)) {
      if (!isConversationId(id) || (role !== "writer" && role !== "observer")) {
        throw new ParleyError(ErrorCode.InvalidToken, "token has invalid conversation grants");
      }
      grants.set(id, role);
    }
  }
  if (sid !== undefined && typeof sid !== "string") throw new ParleyError(ErrorCode.InvalidToken, "token has an invalid session");
  if (sup !== undefined && typeof sup !== "string") throw new ParleyError(ErrorCode.InvalidToken, "token has an invalid support grant");
  if (cscope !== undefined && !isConversationId(cscope)) throw new ParleyError(ErrorCode.InvalidToken, "token has an invalid conversation scope");
  return {
    user: sub,
    org,
    grants,
    expiresAt: exp * 1000,
    tokenId: jti,
    sessionFamily: sid ?? null,
    scoped: conv !== undefined,
    supportGrant: sup ?? null,
    apiKey: null,
    conversationScope: (cscope as string | undefined) ?? null,
  };
}
