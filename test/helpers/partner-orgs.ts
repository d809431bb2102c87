// Organisations as partner-event tests need them: signed up over HTTP, each with an API key for
// its ticketing system, and the organisation's whole event stream read by paging.

import { expect } from "vitest";
import type { ParleyEvent } from "../../protocol/index.ts";
import type { apiClient } from "./http-client.ts";
import { confirmedSignUp } from "./sign-up.ts";

export const PARTNER_PASSWORD = "violet-harbour-tractor-91!";

type Api = ReturnType<typeof apiClient>;

export interface PartnerOrg {
  token: string;
  orgId: string;
  userId: string;
  key: string;
}

/** Signs a person up with a new organisation and gives the organisation an API key. */
export async function signUpWithKey(api: Api, email: string, organisation: string): Promise<PartnerOrg> {
  const signup = await confirmedSignUp(api, { email, password: PARTNER_PASSWORD, name: email.split("@")[0], organisation });
  expect(signup.status).toBe(201);
  const token = signup.body.accessToken as string;
  const orgId = (signup.body.organisation as { id: string }).id;
  const key = await api("POST", `/v1/organisations/${orgId}/api-keys`, { token, body: { name: "ticketing", scopes: ["conversations:write"] } });
  expect(key.status).toBe(201);
  return { token, orgId, userId: (signup.body.user as { id: string }).id, key: key.body.key as string };
}

/** Every event of an organisation after `after`, by paging. */
export async function allEvents(api: Api, credential: string, after = 0): Promise<ParleyEvent[]> {
  const events: ParleyEvent[] = [];
  for (;;) {
    const page = await api("GET", `/v1/events?after=${after}&limit=50`, { token: credential });
    expect(page.status).toBe(200);
    events.push(...(page.body.items as ParleyEvent[]));
    after = page.body.nextCursor as number;
    if (!page.body.hasMore) return events;
  }
}
