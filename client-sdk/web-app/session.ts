// Who is signed in: the sign-up request, sign-in (with a second factor when enrolled), restoring the session
// from the refresh cookie on load, and signing out. The socket client (ParleyClient) belongs to
// the session: one per signed-in person, closed on sign-out.

import { ParleyClient } from "../index.ts";
import { accessToken, api, clearAccessToken, publicApi, refreshSession, setAccessToken } from "./api.ts";
import type { SecurityKeyProof } from "./security-keys.ts";

/** A membership as /v1/me lists it. */
export interface Membership {
  orgId: string;
  orgName: string;
  role: "owner" | "admin" | "member";
}

/** The signed-in person. */
export interface Session {
  user: { id: string; email: string; name: string; twoFactor: boolean };
  organisation: { id: string; name: string; role: Membership["role"] };
  memberships: Membership[];
  client: ParleyClient;
}

interface SignInAnswer {
  accessToken: string;
  expiresIn: number;
}

function socketUrl(): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

async function loadSession(): Promise<Session> {
  const me = await api<{ user: Session["user"]; organisation: { id: string; role: Membership["role"] }; memberships: Membership[] }>("GET", "/v1/me");
  const name = me.memberships.find((m) => m.orgId === me.organisation.id)?.orgName ?? me.organisation.id;
  const client = new ParleyClient({ url: socketUrl(), token: accessToken, apiUrl: location.origin });
  return { user: me.user, organisation: { ...me.organisation, name }, memberships: me.memberships, client };
}

/** The session from the refresh cookie, or null when signed out. */
export async function restoreSession(): Promise<Session | null> {
  if (!(await refreshSession())) return null;
  return loadSession();
}

/**
 * Asks for an organisation and its owner. Nothing exists yet: the server mails the address a link
 * (the same answer whether or not it has an account), whose page creates both and signs in.
 */
export async function requestSignUp(input: { email: string; password: string; name: string; organisation: string }): Promise<void> {
  await publicApi<{ status: string }>("POST", "/v1/signup", input);
}

/** Signs in; `totp`, `recoveryCode` or a security key's `webauthn` proof when two-factor is on. */
export async function signIn(input: { email: string; password: string; totp?: string; recoveryCode?: string; webauthn?: SecurityKeyProof }): Promise<Session> {
  const answer = await publicApi<SignInAnswer>("POST", "/v1/auth/login", { ...input, refreshCookie: true });
  setAccessToken(answer.accessToken, answer.expiresIn);
  return loadSession();
}

/** Signs in without a password: a passkey's proof (the key verified the person with a PIN or biometrics). */
export async function signInWithPasskey(proof: SecurityKeyProof): Promise<Session> {
  const answer = await publicApi<SignInAnswer>("POST", "/v1/auth/webauthn/login", { ...proof, refreshCookie: true });
  setAccessToken(answer.accessToken, answer.expiresIn);
  return loadSession();
}

/** Signs out on the server (the cookies go too) and here. */
export async function signOut(session: Session): Promise<void> {
  session.client.close();
  try {
    await api("POST", "/v1/auth/logout", {});
  } finally {
    clearAccessToken();
  }
}

/** Reloads the person's details (after enrolling in two-factor). */
export async function reloadSession(session: Session): Promise<Session> {
  const me = await api<{ user: Session["user"] }>("GET", "/v1/me");
  return { ...session, user: me.user };
}
