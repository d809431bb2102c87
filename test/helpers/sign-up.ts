// Signs an organisation and its owner up over the HTTP API, as the README's walkthrough does: the
// sign-up request, then the confirmation link from the mail (wherever this test's server sends it,
// see mailboxes.ts), POSTed as the page's button would. Hands back what a test needs to act as them.

import type { ApiResponse } from "./http-client.ts";
import { mailSeen, waitForNewMail } from "./mailboxes.ts";

/** An organisation's owner, signed in. */
export interface SignedUp {
  /** The owner's access token (works over HTTP and on the socket). */
  token: string;
  orgId: string;
  userId: string;
}

/** A password the policy accepts. */
export const TEST_PASSWORD = "violet-harbour-tractor-91!";

type Api = (method: string, path: string, options?: { body?: unknown; token?: string }) => Promise<ApiResponse>;

/** What a sign-up asks for; the password defaults to {@link TEST_PASSWORD}, the name to the address's local part. */
export interface SignUpRequest {
  email: string;
  organisation: string;
  password?: string;
  name?: string;
  refreshCookie?: boolean;
}

/** The subject of the mail that confirms a sign-up (an address without an account). */
export const CONFIRM_SUBJECT = "Confirm your Parley sign-up";

/** The path (`/signup/<token>`) of the newest confirmation link mailed to `email` after `seen`. */
export async function signUpLink(email: string, seen: Set<string>): Promise<string> {
  const mail = await waitForNewMail(seen, (m) => m.to.some((to) => to.toLowerCase() === email.toLowerCase()) && m.subject === CONFIRM_SUBJECT);
  const match = /https?:\/\/\S+?(\/signup\/[A-Za-z0-9_-]+)/.exec(mail.text);
  if (!match) throw new Error(`no confirmation link in: ${mail.text}`);
  return match[1];
}

/**
 * Signs up and confirms with the mailed link; returns the confirmation's answer (201: the tokens,
 * `user` and `organisation`). Throws unless the request is accepted (202) and the link confirms.
 */
export async function confirmedSignUp(api: Api, request: SignUpRequest): Promise<ApiResponse> {
  const seen = await mailSeen();
  const { email, organisation, password = TEST_PASSWORD, name = email.split("@")[0], refreshCookie } = request;
  const asked = await api("POST", "/v1/signup", { body: { email, password, name, organisation } });
  if (asked.status !== 202) throw new Error(`sign-up of ${email} failed: ${asked.status} ${JSON.stringify(asked.body)}`);
  const confirmed = await api("POST", await signUpLink(email, seen), { body: { refreshCookie } });
  if (confirmed.status !== 201) throw new Error(`confirming the sign-up of ${email} failed: ${confirmed.status} ${JSON.stringify(confirmed.body)}`);
  return confirmed;
}

/** Signs up `email` as the owner of a new organisation (request, mailed link, confirmation). */
export async function signUp(api: Api, email: string, organisation: string): Promise<SignedUp> {
  const response = await confirmedSignUp(api, { email, organisation });
  return {
    token: response.body.accessToken as string,
    orgId: (response.body.organisation as { id: string }).id,
    userId: (response.body.user as { id: string }).id,
  };
}

/**
 * Makes an existing account a member of an organisation the way the product does: an admin
 * invites the address, the person (signed in with `personToken`) accepts. Throws otherwise.
 */
export async function joinOrganisation(
  api: Api,
  organisation: { orgId: string; adminToken: string },
  person: { email: string; token: string },
  role: "owner" | "admin" | "member" = "member",
): Promise<void> {
  const invited = await api("POST", `/v1/organisations/${organisation.orgId}/members`, { token: organisation.adminToken, body: { email: person.email, role } });
  if (invited.status !== 202) throw new Error(`invitation of ${person.email} failed: ${invited.status} ${JSON.stringify(invited.body)}`);
  const id = (invited.body.invitation as { id: string }).id;
  const accepted = await api("POST", `/v1/me/member-invitations/${id}/accept`, { token: person.token });
  if (accepted.status !== 200) throw new Error(`${person.email} could not accept: ${accepted.status} ${JSON.stringify(accepted.body)}`);
}

/**
 * A fresh access token for `email`, signed in with its password: for tests that move the server's
 * clock past the expiry of the tokens they had (the server's clock decides expiry, not the system's).
 */
export async function signIn(api: Api, email: string, password = TEST_PASSWORD): Promise<string> {
  const response = await api("POST", "/v1/auth/login", { body: { email, password } });
  if (response.status !== 200) throw new Error(`sign-in of ${email} failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.accessToken as string;
}
