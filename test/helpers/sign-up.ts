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

type Api = (method: string, path: string, options?: { body?: unknown }) => Promise<ApiResponse>;

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
