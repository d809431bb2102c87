// The adapters by server name: the only place that maps a server under test to its protocol.

import { hocuspocusClient } from "./hocuspocus.ts";
import { parleyClient } from "./parley.ts";
import type { ProtocolClient } from "./protocol-client.ts";
import { relayClient } from "./relay.ts";
import { yWebsocketClient } from "./y-websocket.ts";

/** Names of the servers under test. */
export type ServerName = "relay" | "parley" | "hocuspocus" | "y-websocket";
export const SERVER_NAMES: readonly ServerName[] = ["relay", "parley", "hocuspocus", "y-websocket"];

export const clients: Record<ServerName, ProtocolClient> = {
  relay: relayClient,
  parley: parleyClient,
  hocuspocus: hocuspocusClient,
  "y-websocket": yWebsocketClient,
};
