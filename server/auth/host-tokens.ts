// Tokens a host application mints with its own keys: verified against its JWKS (a URL, fetched
// and cached by jose, refetched when an unknown key id appears, so key rotation needs no restart;
// or a file, re-read when it changes), its issuer and audience, with the algorithms pinned.
// Which claims name the Parley person and organisation is configuration (see README).

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors as joseErrors, type JWTVerifyGetKey, jwtVerify } from "jose";
import { ErrorCode } from "../../protocol/index.ts";
import type { HostTokenSettings } from "../platform/config.ts";
import { ParleyError } from "../platform/errors.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import { isIdentityId, type TokenIdentity, type TokenSettings, verifyToken } from "./tokens.ts";
import type { Clock } from "../platform/clock.ts";

/** Verifies host-application tokens. */
export interface HostTokenVerifier {
  readonly issuer: string;
  verify(token: string): Promise<TokenIdentity>;
}

function fileKeySet(file: string): JWTVerifyGetKey {
  let loaded: { mtimeMs: number; size: number; keys: JWTVerifyGetKey } | null = null;
  return async (header, token) => {
    const info = await stat(file);
    if (!loaded || loaded.mtimeMs !== info.mtimeMs || loaded.size !== info.size) {
      loaded = { mtimeMs: info.mtimeMs, size: info.size, keys: createLocalJWKSet(JSON.parse(await readFile(file, "utf8"))) };
    }
    return loaded.keys(header, token);
  };
}

/** Builds the verifier for a configured host application; its tokens expire by `now`. */
export function hostTokenVerifier(settings: HostTokenSettings, now: Clock): HostTokenVerifier {
  const keys = settings.jwksUrl
    ? createRemoteJWKSet(new URL(settings.jwksUrl), { cooldownDuration: settings.jwksCooldownMs, cacheMaxAge: settings.jwksMaxAgeMs })
    : fileKeySet(settings.jwksFile ?? "");
  return {
    issuer: settings.issuer,
    async verify(token) {
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: settings.algorithms,
          issuer: settings.issuer,
          audience: settings.audience,
          requiredClaims: ["exp"],
          currentDate: new Date(now()),
        }));
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new ParleyError(ErrorCode.TokenExpired, "token has expired");
        throw new ParleyError(ErrorCode.InvalidToken, "token is invalid");
      }
      const user = payload[settings.userClaim];
      const org = payload[settings.orgClaim];
      if (!isIdentityId(user) || !isIdentityId(org)) {
        throw new ParleyError(ErrorCode.InvalidToken, `token lacks a valid "${settings.userClaim}" or "${settings.orgClaim}" claim`);
      }
      const jti = typeof payload.jti === "string" ? payload.jti : createHash("sha256").update(token).digest("hex").slice(0, 32);
      return {
        user,
        org,
        grants: new Map(),
        expiresAt: (payload.exp as number) * 1000,
        tokenId: jti,
        sessionFamily: null,
        scoped: false,
        supportGrant: null,
        apiKey: null,
      };
    },
  };
}

/** The unverified issuer of a JWT, used only to pick the verifier; "" when it has none. */
function claimedIssuer(token: string): string {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" ? iss : "";
  } catch {
    return "";
  }
}

/** Verifies an access token: a host application's when it names the host's issuer, else Parley's own. */
export function verifyAnyToken(keys: ServerKeys, settings: TokenSettings, host: HostTokenVerifier | null | undefined, token: string, now: Clock): Promise<TokenIdentity> {
  if (host && claimedIssuer(token) === host.issuer) return host.verify(token);
  return verifyToken(keys, settings, token, now);
}
