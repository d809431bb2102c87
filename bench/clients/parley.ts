// Adapter for Parley through its y-websocket route (/yjs/<room>?token=): the route existing Yjs
// apps use, one conversation per socket, plain y-protocols frames, a token per room. Parley sends
// its own sync step 1 to writers; our empty step 1 is answered with the whole state (step 2).
// This route has no acks: a write is durable before anyone else receives it.

import type { ClientAuth, ClientSession, ProtocolClient } from "./protocol-client.ts";
import { encodeBareUpdate, yWebsocketClient } from "./y-websocket.ts";

export const parleyClient: ProtocolClient = {
  url: (port, room, auth) => `ws://127.0.0.1:${port}/yjs/${encodeURIComponent(room)}?token=${auth?.tokensByRoom?.[room] ?? ""}`,
  session: (room: string, auth: ClientAuth): ClientSession => yWebsocketClient.session(room, auth),
  encodeUpdate: (_room, update) => encodeBareUpdate(update),
};
