// Awareness ids belong to their owner on every node, not only on the node the owner is connected
// to: two real server processes sharing Postgres and Redis. A client on node B cannot announce a
// state under an awareness id that a person on node A holds (the owning node's claim travels with
// the fan-out), nor under the Yjs client id a person wrote the document with (the shared
// client-owner table the document rules use), even when B never saw that person's presence.

import { afterEach, describe, expect, it } from "vitest";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import * as Y from "yjs";
import { ErrorCode } from "../protocol/index.ts";
import { type Cluster, startCluster } from "./helpers/cluster.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { requireClusterServices } from "./helpers/services.ts";
import { waitUntil } from "./helpers/wait.ts";

const services = await requireClusterServices();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function cluster(): Promise<Cluster> {
  if (!services) throw new Error("unreachable: skipped without services");
  const started = await startCluster(services, { count: 2 });
  cleanups.push(() => started.cleanup());
  return started;
}

type Frame = { kind: string; message?: { type: string; update?: Uint8Array } };
const isAwareness = (frame: Frame) => frame.kind === "doc" && frame.message?.type === "awareness";

/** The state an awareness frame carries for `clientId` (undefined when it carries none). */
function nameIn(frame: Frame, clientId: number): string | undefined {
  const view = new Awareness(new Y.Doc());
  applyAwarenessUpdate(view, (frame.message as { update: Uint8Array }).update, "test");
  return (view.getStates().get(clientId) as { name?: string } | undefined)?.name;
}

/** Every name a client has seen announced for `clientId`. */
const namesSeen = (client: RawClient, clientId: number) => client.frames.filter(isAwareness).map((f) => nameIn(f as Frame, clientId));

/** An awareness update announcing `clientId` as `name` (at a clock past every earlier one). */
function announce(clientId: number, name: string, clock: number): Uint8Array {
  const awareness = new Awareness(new Y.Doc());
  awareness.clientID = clientId;
  for (let i = 0; i < clock; i++) awareness.setLocalState({ name });
  return encodeAwarenessUpdate(awareness, [clientId]);
}

describe.skipIf(!services)("awareness claims across nodes", { timeout: 120_000 }, () => {
  const room = "c-aware-nodes";
  const joined = async (c: Cluster, node: number, user: string, org: string) => {
    const token = await c.token(user, org, { [room]: "writer" });
    const client = await RawClient.authenticated(c.nodes[node].url, token);
    cleanups.push(() => client.close());
    client.control({ type: "join", conversation: room });
    await client.waitForControl("joined");
    return client;
  };

  it("a client on node B cannot take the awareness id a person on node A holds", async () => {
    const c = await cluster();
    const watcherA = await joined(c, 0, "wat-a", "org-watch");
    const watcherB = await joined(c, 1, "wat-b", "org-watch");
    const alice = await joined(c, 0, "alice", "org-a");
    const id = 424242;
    // Alice's presence reaches node B: the claim travelled with it. (Renewed as clients renew it:
    // until B's subscription to the conversation is live, a state published on A misses B.)
    let clock = 1;
    await waitUntil(
      () => {
        alice.doc(room, { type: "awareness", update: announce(id, "alice", clock++) });
        return namesSeen(watcherB, id).includes("alice");
      },
      { what: "Alice's presence on node B", interval: 250 },
    );

    const mallory = await joined(c, 1, "mallory", "org-m");
    mallory.doc(room, { type: "awareness", update: announce(id, "mallory", 5) });
    expect(await mallory.waitForControl("error")).toMatchObject({ code: ErrorCode.Forbidden, request: "awareness" });

    // A barrier: Alice's next state arrives everywhere; Mallory's never did, on either node.
    alice.doc(room, { type: "awareness", update: announce(id, "alice again", clock + 1) });
    await watcherB.waitFor((f) => isAwareness(f as Frame) && nameIn(f as Frame, id) === "alice again");
    await watcherA.waitFor((f) => isAwareness(f as Frame) && nameIn(f as Frame, id) === "alice again");
    expect(namesSeen(watcherB, id)).not.toContain("mallory");
    expect(namesSeen(watcherA, id)).not.toContain("mallory");
  });

  it("a client on node B cannot take the client id a person wrote the document with on node A, though B never saw their presence", async () => {
    const c = await cluster();
    const alice = await joined(c, 0, "alice", "org-a");
    const doc = new Y.Doc();
    doc.getText("notes").insert(0, "written on A");
    alice.doc(room, { type: "update", update: Y.encodeStateAsUpdate(doc) });
    await alice.waitForControl("ack");

    // Node B opens the conversation only now: it never relayed an awareness state of Alice's.
    const watcherB = await joined(c, 1, "wat-b", "org-watch");
    const mallory = await joined(c, 1, "mallory", "org-m");
    mallory.doc(room, { type: "awareness", update: announce(doc.clientID, "mallory", 1) });
    expect(await mallory.waitForControl("error")).toMatchObject({ code: ErrorCode.Forbidden, request: "awareness" });

    // A barrier on B: Alice's own presence, announced on A, reaches B's watcher; Mallory's never did.
    let clock = 2;
    await waitUntil(
      () => {
        alice.doc(room, { type: "awareness", update: announce(doc.clientID, "alice", clock++) });
        return namesSeen(watcherB, doc.clientID).includes("alice");
      },
      { what: "Alice's presence on node B", interval: 250 },
    );
    expect(namesSeen(watcherB, doc.clientID)).not.toContain("mallory");
  });
});
