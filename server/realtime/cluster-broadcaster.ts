// The Broadcaster of a node that has peers: publishes to local subscribers as usual and also
// hands awareness updates to the bus, so presence is seen across nodes. Committed updates are not
// sent from here: they reach the bus from the write path's fan-out (commit-fan-out.ts).

import type { DocMessage } from "../../protocol/index.ts";
import type { Bus } from "../bus/bus.ts";
import type { SocketTraffic } from "../platform/metrics.ts";
import type { UWS } from "../platform/uws.ts";
import { type BroadcastOrigin, Broadcaster } from "./broadcaster.ts";
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

  override publish(conversation: string, message: DocMessage, origin?: BroadcastOrigin, envelope?: Uint8Array): void {
    super.publish(conversation, message, origin, envelope);
    if (message.type === "awareness") {
      const session = origin && "id" in origin && typeof origin.id === "string" ? origin.id : "";
      this.bus.publishAwareness(conversation, session, message.update);
    }
  }

  /** Publishes to this node's subscribers only (for what came from another node). */
  publishLocal(conversation: string, message: DocMessage): void {
    super.publish(conversation, message);
  }
}
