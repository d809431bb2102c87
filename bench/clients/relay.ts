// Adapter for the bare relay (bench/servers/relay.ts): the room is the URL path, there is no
// handshake and no state, so a socket counts as synced once open. Updates travel as bare
// y-protocols update messages so the bytes match what y-websocket carries.

import type { ClientSession, ProtocolClient } from "./protocol-client.ts";
import { readBareMessage } from "./y-sync.ts";
import { encodeBareUpdate } from "./y-websocket.ts";

export const relayClient: ProtocolClient = {
  url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
  session: (): ClientSession => ({
    opening: () => [],
    receive: (frame) => readBareMessage(frame),
  }),
  encodeUpdate: (_room, update) => encodeBareUpdate(update),
};
