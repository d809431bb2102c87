// Signs an organisation and its owner up over the HTTP API, as the README's walkthrough does, and
// hands back what a test needs to act as them.

import type { ApiResponse } from "./http-client.ts";

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

/** Signs up `email` as the owner of a new organisation; throws unless the server says 201. */
export async function signUp(api: Api, email: string, organisation: string): Promise<SignedUp> {
  const response = await api("POST", "/v1/signup", { body: { email, password: TEST_PASSWORD, name: email.split("@")[0], organisation } });
  if (response.status !== 201) throw new Error(`sign-up of ${email} failed: ${response.status} ${JSON.stringify(response.body)}`);
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
