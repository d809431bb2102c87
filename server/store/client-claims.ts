// Client-id claims of a batch, once for every backend: given the owners the store already holds
// for the client ids the batch's appends claim, decides which appends go ahead and which new
// owners to record. Pure over plain data; runs after the conversations' heads are locked, so an
// owner recorded by a concurrent batch (another node) is seen.

import type { AppendRequest } from "./store.ts";

/** The actor owning a client id. */
export interface ClientIdOwner {
  user: string;
  org: string;
}

/** One client id an append claims. */
export interface ClaimedId {
  conversation: string;
  client: number;
}

/** The key of a (conversation, client id) pair in owner maps. */
export const claimKey = (conversation: string, client: number | string): string => `${conversation}\u0000${client}`;

/** Every (conversation, client id) the batch claims, each once. */
export function claimedIds(requests: readonly AppendRequest[]): ClaimedId[] {
  const seen = new Map<string, ClaimedId>();
  for (const { conversation, claims } of requests) {
    for (const client of claims ?? []) seen.set(claimKey(conversation, client), { conversation, client });
  }
  return [...seen.values()];
}

/** What the claims decide: appends refused (by index) and owners to record. */
export interface ClaimDecision {
  refused: Set<number>;
  fresh: (ClaimedId & ClientIdOwner & { session: string })[];
}

/** Decides the batch's claims in request order: the first actor to claim an id owns it. */
export function decideClaims(requests: readonly AppendRequest[], owners: ReadonlyMap<string, ClientIdOwner>): ClaimDecision {
  const known = new Map(owners);
  const refused = new Set<number>();
  const fresh: ClaimDecision["fresh"] = [];
  for (let i = 0; i < requests.length; i++) {
    const { conversation, claims, actor } = requests[i];
    if (!claims || claims.length === 0) continue;
    const taken = claims.some((client) => {
      const owner = known.get(claimKey(conversation, client));
      return owner !== undefined && (owner.user !== actor.user || owner.org !== actor.org);
    });
    if (taken) {
      refused.add(i);
      continue;
    }
    for (const client of claims) {
      const key = claimKey(conversation, client);
      if (known.has(key)) continue;
      known.set(key, { user: actor.user, org: actor.org });
      fresh.push({ conversation, client, user: actor.user, org: actor.org, session: actor.session });
    }
  }
  return { refused, fresh };
}

/** The store's answer for every request: the committed ones in order, the refused ones marked. */
export function withRefusals<T extends { conversation: string; seq: number }>(
  requests: readonly AppendRequest[],
  refused: ReadonlySet<number>,
  committed: readonly T[],
): (T | { conversation: string; seq: number; at: number; refused: "client_id_taken" })[] {
  if (refused.size === 0) return [...committed];
  let next = 0;
  return requests.map((request, i) => (refused.has(i) ? { conversation: request.conversation, seq: 0, at: 0, refused: "client_id_taken" as const } : committed[next++]));
}
