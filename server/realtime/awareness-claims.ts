// Who an awareness client id belongs to, per conversation, remembered beyond the connection
// and the channel: the first identity (organisation + person) that announced it. A connection
// holds its ids while it lives; when it closes, they wait for the same identity to come back
// (a reconnecting owner takes them up again) and no other identity may take them. Across nodes the
// claims travel with the awareness fan-out, and an id someone wrote the document with is theirs.

import { type AnyPrincipal, actingOrg, actorId } from "../http/principal.ts";

/** The identity an awareness claim names: organisation and person (what every node compares). */
export function awarenessIdentity(identity: { org: string; user: string }): string {
  return `${identity.org}\u0000${identity.user}`;
}

/** The awareness identity of a connection's principal: the organisation and the actor its writes are attributed to. */
export function principalAwarenessIdentity(principal: AnyPrincipal): string {
  return awarenessIdentity({ org: actingOrg(principal), user: actorId(principal) });
}

/**
 * The identity that wrote the document under a Yjs client id (the document rules' shared
 * client-owner table, the same on every node), or undefined when nobody has yet or it is not at hand.
 */
export type DocumentClientOwner = (conversation: string, clientId: number) => string | undefined;

/** How many (conversation, client id) claims one node remembers; the oldest unused go first. */
const MAX_CLAIMS = 100_000;

/** First-claimant memory of awareness client ids, bounded (least recently used forgotten first). */
export class AwarenessClaims {
  private readonly claims = new Map<string, string>();

  constructor(private readonly capacity = MAX_CLAIMS) {}

  /**
   * Claims `clientId` in `conversation` for `who`; true when it is `who`'s (now or already),
   * false when another identity claimed it first.
   */
  claim(conversation: string, clientId: number, who: string): boolean {
    const key = `${conversation}\u0000${clientId}`;
    const claimant = this.claims.get(key);
    if (claimant !== undefined && claimant !== who) return false;
    // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
    this.claims.delete(key);
    this.claims.set(key, who);
    if (this.claims.size > this.capacity) {
      const oldest = this.claims.keys().next().value;
      if (oldest !== undefined) this.claims.delete(oldest);
    }
    return true;
  }
}
