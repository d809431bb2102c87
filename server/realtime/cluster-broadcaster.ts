// The Broadcaster of a node that has peers: publishes to local subscribers as usual and also
// hands awareness updates to the bus, so presence is seen across nodes. Committed updates are not
// sent from here: they reach the bus from the write path's fan-out (commit-fan-out.ts).

import type { DocMessage } from "../../protocol/index.ts";
import type { Bus } from "../bus/bus.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import { type BroadcastOrigin, Broadcaster } from "./broadcaster.ts";
import { principalAwarenessIdentity } from "./awareness-claims.ts";
import { ClientSession } from "./client-session.ts";
import type { ChannelRegistry } from "./conversation-channel.ts";

/** A {@link Broadcaster} that also relays awareness to the other nodes. */
export class ClusterBroadcaster extends Broadcaster {
  constructor(
    app: UWS.TemplatedApp,
    private readonly bus: Bus,
    channels?: ChannelRegistry,
    traffic?: SocketTraffic,
  ) {
    super(app, channels, traffic);
  }

  override publish(conversation: string, message: DocMessage, origin?: BroadcastOrigin, envelope?: Uint8Array, bareFrame?: Uint8Array): void {
    super.publish(conversation, message, origin, envelope, bareFrame);
    if (message.type === "awareness") {
      const session = origin instanceof ClientSession ? origin.id : "";
      // The claim travels with the states: the other nodes hold the same ids for the same identity.
      const who = origin instanceof ClientSession && origin.principal ? principalAwarenessIdentity(origin.principal) : "";
      this.bus.publishAwareness(conversation, session, message.update, who);
    }
  }

  /** Publishes to this node's subscribers only (for what came from another node). */
  publishLocal(conversation: string, message: DocMessage): void {
    super.publish(conversation, message);
  }

  /**
   * Another node's awareness update, accepted there from `who`: checked against this node's
   * claims (recorded here too), then published to this node's subscribers.
   */
  publishRemoteAwareness(conversation: string, update: Uint8Array, who: string): void {
    const channel = this.channels?.get(conversation);
    const relay = channel ? channel.awareness.acceptRemote(update, who) : update;
    if (relay) super.publish(conversation, { type: "awareness", update: relay });
  }
}
