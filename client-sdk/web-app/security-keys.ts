// Security keys and passkeys in the browser. The server hands out the WebAuthn options and a
// challengeToken; @simplewebauthn/browser turns the options into navigator.credentials calls (the
// base64url <-> ArrayBuffer conversions, the browser's errors by name) and the answer goes back
// with the token. The origin and relying party are checked by the browser and again by the server.

import {
  browserSupportsWebAuthn,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";
import { api, publicApi } from "./api.ts";

/** One of the person's keys as the API lists it (never its key material). */
export interface SecurityKey {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** A key's signed answer to a sign-in challenge, as /v1/auth/login's `webauthn` field takes it. */
export interface SecurityKeyProof {
  challengeToken: string;
  response: unknown;
}

interface Ceremony<Options> {
  options: Options;
  challengeToken: string;
}

/** The browser's refusal of a ceremony, in words (cancelled, timed out, a key registered already). */
export class SecurityKeyError extends Error {}

/** True when this browser can use security keys at all (secure context, WebAuthn present). */
export function securityKeysSupported(): boolean {
  return browserSupportsWebAuthn();
}

async function inBrowser<T>(ceremony: () => Promise<T>): Promise<T> {
  try {
    return await ceremony();
  } catch (error) {
    const name = error instanceof Error ? ((error as Error & { cause?: { name?: string } }).cause?.name ?? error.name) : "";
    if (name === "InvalidStateError") throw new SecurityKeyError("This security key is registered already.");
    if (name === "NotAllowedError" || name === "AbortError") throw new SecurityKeyError("The security key did not answer: it was cancelled or timed out. Try again.");
    throw new SecurityKeyError(`The security key could not be used: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The signed-in person's keys. */
export async function listSecurityKeys(): Promise<SecurityKey[]> {
  return (await api<{ items: SecurityKey[] }>("GET", "/v1/auth/webauthn/credentials")).items;
}

/**
 * Registers a new key under `name`: the browser asks the person to touch or unlock it. A first
 * key of a person with no recovery codes comes with ten (`recoveryCodes`, shown this once).
 */
export async function addSecurityKey(name: string): Promise<SecurityKey & { recoveryCodes?: string[] }> {
  const started = await api<Ceremony<PublicKeyCredentialCreationOptionsJSON>>("POST", "/v1/auth/webauthn/register/options", {});
  const response = await inBrowser(() => startRegistration({ optionsJSON: started.options }));
  return api<SecurityKey & { recoveryCodes?: string[] }>("POST", "/v1/auth/webauthn/register", { name, challengeToken: started.challengeToken, response });
}

/** Ten new recovery codes in place of the old ones, proven with one of the person's keys (a session alone is not enough). */
export async function replaceRecoveryCodes(email: string): Promise<string[]> {
  const webauthn = await securityKeyProof(email);
  return (await api<{ recoveryCodes: string[] }>("POST", "/v1/auth/recovery-codes", { webauthn })).recoveryCodes;
}

/** Renames one of the person's keys (recorded in the audit trail of each of their organisations). */
export async function renameSecurityKey(id: string, name: string): Promise<void> {
  await api("PATCH", `/v1/auth/webauthn/credentials/${encodeURIComponent(id)}`, { name });
}

/** Removes one of the person's keys (the organisations' owners and admins get a security notice). */
export async function removeSecurityKey(id: string): Promise<void> {
  await api("DELETE", `/v1/auth/webauthn/credentials/${encodeURIComponent(id)}`);
}

function signInOptions(email: string | undefined): Promise<Ceremony<PublicKeyCredentialRequestOptionsJSON>> {
  return publicApi("POST", "/v1/auth/webauthn/login/options", email ? { email } : {});
}

/** A key's answer for signing in: with `email`, by one of that person's keys (second factor); without, any passkey. */
export async function securityKeyProof(email?: string): Promise<SecurityKeyProof> {
  const started = await signInOptions(email);
  const response = await inBrowser(() => startAuthentication({ optionsJSON: started.options }));
  return { challengeToken: started.challengeToken, response };
}
