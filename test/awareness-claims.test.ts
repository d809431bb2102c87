// Awareness ids under arbitrary connect / announce / disconnect sequences of several identities:
// an id first announced by one identity is never accepted from another, a live connection's id
// is never taken by another identity, and an owner coming back always gets its ids.
// Runs: PARLEY_PROPERTY_RUNS (default 300), seed PARLEY_PROPERTY_SEED (printed on failure).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import * as Y from "yjs";
import { AwarenessClaims } from "../server/realtime/awareness-claims.ts";
import { AwarenessRelay } from "../server/realtime/awareness-relay.ts";

const settings = {
  numRuns: Number(process.env.PARLEY_PROPERTY_RUNS ?? 300),
  seed: process.env.PARLEY_PROPERTY_SEED ? Number(process.env.PARLEY_PROPERTY_SEED) : undefined,
};

const IDS = [11, 12, 13];
const WHO = ["alice", "bob", "mallory"];

/** One awareness update announcing `clientId` with a state naming `who`. */
function announce(clientId: number, who: string, clock: number): Uint8Array {
  const awareness = new Awareness(new Y.Doc());
  awareness.clientID = clientId;
  awareness.setLocalState({ who });
  // Bring the clock up to `clock` so later announcements are not stale.
  for (let i = 1; i < clock; i++) awareness.setLocalState({ who, i });
  return encodeAwarenessUpdate(awareness, [clientId]);
}

function namesIn(update: Uint8Array): Map<number, string | undefined> {
  const view = new Awareness(new Y.Doc());
  applyAwarenessUpdate(view, update, "test");
  const names = new Map<number, string | undefined>();
  for (const [id, state] of view.getStates()) names.set(id, (state as { who?: string }).who);
  return names;
}

type Step = { kind: "connect"; who: number } | { kind: "announce"; connection: number; id: number } | { kind: "close"; connection: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("connect" as const), who: fc.nat(WHO.length - 1) }),
  fc.record({ kind: fc.constant("announce" as const), connection: fc.nat(7), id: fc.constantFrom(...IDS) }),
  fc.record({ kind: fc.constant("close" as const), connection: fc.nat(7) }),
);

describe("awareness id ownership", () => {
  it("holds under arbitrary sequences of connections of several identities", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const claims = new AwarenessClaims();
        // Channels come and go; the claims outlive them.
        let relay = new AwarenessRelay("c-prop", claims);
        const connections: { owner: object; who: string; open: boolean }[] = [];
        const firstClaimant = new Map<number, string>();
        const liveHolder = new Map<number, object>();
        let clock = 1;
        for (const s of steps) {
          if (s.kind === "connect") {
            connections.push({ owner: {}, who: WHO[s.who], open: true });
            continue;
          }
          const connection = connections[s.connection % Math.max(1, connections.length)];
          if (!connection || !connection.open) continue;
          if (s.kind === "close") {
            connection.open = false;
            relay.removeOwner(connection.owner);
            for (const [id, holder] of liveHolder) if (holder === connection.owner) liveHolder.delete(id);
            if (connections.every((c) => !c.open)) relay = new AwarenessRelay("c-prop", claims);
            continue;
          }
          clock += 1;
          const result = relay.accept(connection.owner, announce(s.id, connection.who, clock), connection.who);
          const relayed = result.update ? namesIn(result.update).get(s.id) : undefined;
          const first = firstClaimant.get(s.id);
          if (first !== undefined && first !== connection.who) {
            // Another identity's id: never relayed, whether its owner is connected or not.
            expect(relayed).toBeUndefined();
            expect(result.foreign).toBe(1);
          } else {
            // The owner (first or returning) always gets its id.
            expect(result.foreign).toBe(0);
            expect(relayed).toBe(connection.who);
            firstClaimant.set(s.id, connection.who);
            liveHolder.set(s.id, connection.owner);
          }
        }
      }),
      settings,
    );
  });
});

describe("awareness id ownership across two nodes", () => {
  it("holds when each node relays what it accepted to the other (the claim travels with it)", () => {
    type NodeStep = { node: number; who: number; id: number };
    const nodeStep: fc.Arbitrary<NodeStep> = fc.record({ node: fc.nat(1), who: fc.nat(WHO.length - 1), id: fc.constantFrom(...IDS) });
    fc.assert(
      fc.property(fc.array(nodeStep, { maxLength: 40 }), (steps) => {
        const nodes = [0, 1].map(() => new AwarenessRelay("c-nodes", new AwarenessClaims()));
        // One connection per identity and node.
        const owners = nodes.map(() => WHO.map(() => ({})));
        const firstClaimant = new Map<number, string>();
        let clock = 1;
        for (const s of steps) {
          clock += 1;
          const who = WHO[s.who];
          const result = nodes[s.node].accept(owners[s.node][s.who], announce(s.id, who, clock), who);
          const first = firstClaimant.get(s.id);
          if (first !== undefined && first !== who) {
            expect(result.foreign).toBe(1);
            expect(result.update).toBeNull();
            continue;
          }
          expect(result.foreign).toBe(0);
          firstClaimant.set(s.id, who);
          // The other node gets what this one accepted, with the identity, and relays it unchanged.
          if (result.update) {
            const relayed = nodes[1 - s.node].acceptRemote(result.update, who);
            expect(relayed ? namesIn(relayed).get(s.id) : undefined).toBe(who);
          }
        }
      }),
      settings,
    );
  });

  it("drops another node's state under an id an identity here wrote the document with", () => {
    const relay = new AwarenessRelay("c-doc", new AwarenessClaims(), (_conversation, clientId) => (clientId === 11 ? "alice" : undefined));
    expect(relay.acceptRemote(announce(11, "mallory", 2), "mallory")).toBeNull();
    expect(relay.accept({}, announce(11, "mallory", 3), "mallory").foreign).toBe(1);
    expect(namesIn(relay.acceptRemote(announce(11, "alice", 4), "alice") as Uint8Array).get(11)).toBe("alice");
  });
});
