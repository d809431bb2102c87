// Security keys and passkeys (WebAuthn) with @simplewebauthn/server: registration and assertion
// options, their verification, and the challenge each ceremony is bound to. A challenge travels
// to the client and back in a token MACed under a server key (purpose, person, expiry), so any
// node can finish a ceremony another node began, and no table of pending challenges is kept.

import { createHmac, timingSafeEqual } from "node:crypto";
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import { ErrorCode } from "../../protocol/index.ts";
import type { WebauthnCredential } from "../directory/directory-types.ts";
import { ParleyError } from "../platform/errors.ts";

/** Who the keys are bound to: the relying party id (a domain) and the origin browsers report. */
export interface RelyingParty {
  id: string;
  origin: string;
  name: string;
}

/** What a challenge was issued for. */
export type CeremonyPurpose = "register" | "sign-in";

const CHALLENGE_TTL_MS = 5 * 60_000;

/** The relying party for a public URL: its host name and origin. */
export function relyingPartyFor(publicUrl: string): RelyingParty {
  const url = new URL(publicUrl);
  return { id: url.hostname, origin: url.origin, name: "Parley" };
}

/** Issues and checks challenge tokens. */
export class ChallengeTokens {
  private readonly key: Buffer;

  constructor(
    secret: Uint8Array,
    private readonly now: () => number,
  ) {
    this.key = createHmac("sha256", secret).update("parley/webauthn-challenge").digest();
  }

  issue(challenge: string, purpose: CeremonyPurpose, userId: string | null): string {
    const body = Buffer.from(JSON.stringify({ c: challenge, p: purpose, u: userId, e: this.now() + CHALLENGE_TTL_MS })).toString("base64url");
    return `${body}.${createHmac("sha256", this.key).update(body).digest("base64url")}`;
  }

  /** The challenge inside a token issued for `purpose` (and `userId`, when given), or a 400/401. */
  open(token: string, purpose: CeremonyPurpose, userId?: string): { challenge: string; userId: string | null } {
    const [body, mac] = token.split(".");
    const expected = body ? createHmac("sha256", this.key).update(body).digest() : Buffer.alloc(0);
    const given = Buffer.from(mac ?? "", "base64url");
    if (!body || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ParleyError(ErrorCode.InvalidRequest, "challengeToken is not one this server issued");
    }
    const claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as { c: string; p: string; u: string | null; e: number };
    if (claims.p !== purpose || (userId !== undefined && claims.u !== userId)) throw new ParleyError(ErrorCode.InvalidRequest, "challengeToken is for another ceremony");
    if (claims.e < this.now()) throw new ParleyError(ErrorCode.InvalidTwoFactorCode, "the security key challenge expired: start again");
    return { challenge: claims.c, userId: claims.u };
  }
}

const asDescriptor = (c: WebauthnCredential) => ({ id: c.id, transports: c.transports as ("usb" | "nfc" | "ble" | "internal" | "hybrid")[] });

/** Options for registering a new key (the person's existing keys excluded). */
export function registrationOptions(rp: RelyingParty, user: { id: string; email: string; name: string }, existing: WebauthnCredential[]) {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.email,
    userDisplayName: user.name,
    userID: new TextEncoder().encode(user.id),
    attestationType: "none",
    excludeCredentials: existing.map(asDescriptor),
    // A passkey when the authenticator can keep one (passwordless sign-in); a plain key otherwise.
    authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
  });
}

/** Checks a registration response; the credential to store, or a 401. */
export async function verifyRegistration(rp: RelyingParty, response: RegistrationResponseJSON, challenge: string) {
  const result = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: false }).catch(
    (error: Error) => {
      throw new ParleyError(ErrorCode.InvalidTwoFactorCode, `the security key's answer does not verify: ${error.message.slice(0, 200)}`);
    },
  );
  if (!result.verified || !result.registrationInfo) throw new ParleyError(ErrorCode.InvalidTwoFactorCode, "the security key's answer does not verify");
  const { credential } = result.registrationInfo;
  return { id: credential.id, publicKey: credential.publicKey, counter: credential.counter, transports: credential.transports ?? [] };
}

/** Options for signing in with a key: the person's keys, or any passkey (discoverable) when unknown. */
export function authenticationOptions(rp: RelyingParty, keys: WebauthnCredential[] | null) {
  return generateAuthenticationOptions({ rpID: rp.id, allowCredentials: keys?.map(asDescriptor), userVerification: "preferred" });
}

/**
 * Checks an assertion against the stored key; its new counter, or a 401. `requireUserVerification`:
 * true for passwordless sign-in (the key stands in for the password, so it must verify the person).
 */
export async function verifyAssertion(rp: RelyingParty, response: AuthenticationResponseJSON, challenge: string, key: WebauthnCredential, requireUserVerification: boolean) {
  const result = await verifyAuthenticationResponse({
    response,
    expectedChallenge: challenge,
    expectedOrigin: rp.origin,
    expectedRPID: rp.id,
    credential: { id: key.id, publicKey: new Uint8Array(key.publicKey), counter: key.counter, transports: asDescriptor(key).transports },
    requireUserVerification,
  }).catch((error: Error) => {
    throw new ParleyError(ErrorCode.InvalidTwoFactorCode, `the security key's signature does not verify: ${error.message.slice(0, 200)}`);
  });
  if (!result.verified) throw new ParleyError(ErrorCode.InvalidTwoFactorCode, "the security key's signature does not verify");
  return result.authenticationInfo.newCounter;
}
