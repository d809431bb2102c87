// Adapter for the y-websocket reference server: one document per socket, named by the URL path;
// frames are bare y-protocols messages. The server answers our empty sync step 1 with step 2.

import * as encoding from "lib0/encoding";
import type { ClientSession, ProtocolClient } from "./protocol-client.ts";
import { readBareMessage, writeEmptyStep1, writeSyncUpdate } from "./y-sync.ts";

function step1(): Uint8Array {
  const encoder = encoding.createEncoder();
  writeEmptyStep1(encoder);
  return encoding.toUint8Array(encoder);
}

/** Encodes a bare sync update message. */
export function encodeBareUpdate(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  writeSyncUpdate(encoder, update);
  return encoding.toUint8Array(encoder);
}

export const yWebsocketClient: ProtocolClient = {
  url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
  session: (): ClientSession => ({
    opening: () => [step1()],
    receive: (frame) => readBareMessage(frame),
  }),
  encodeUpdate: (_room, update) => encodeBareUpdate(update),
};
