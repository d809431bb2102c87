// Adapter for Hocuspocus: every frame starts with the document name; a connection must send an
// auth message (empty token: no onAuthenticate hook is configured) before its sync step 1, which
// Hocuspocus queues until authentication completes.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { type ClientSession, type Incoming, OTHER, type ProtocolClient } from "./protocol-client.ts";
import { readSyncMessage, writeEmptyStep1, writeSyncUpdate } from "./y-sync.ts";

// From @hocuspocus/server's MessageType and @hocuspocus/common's AuthMessageType.
const MESSAGE_AUTH = 2;
const AUTH_TOKEN = 0;
const AUTH_PERMISSION_DENIED = 1;

function frame(room: string, write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, room);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function receive(bytes: Uint8Array): Incoming {
  const decoder = decoding.createDecoder(bytes);
  decoding.readVarString(decoder);
  const type = decoding.readVarUint(decoder);
  if (type === MESSAGE_AUTH) {
    return decoding.readVarUint(decoder) === AUTH_PERMISSION_DENIED
      ? { kind: "error", message: `permission denied: ${decoding.readVarString(decoder)}` }
      : OTHER;
  }
  return readSyncMessage(decoder, type);
}

export const hocuspocusClient: ProtocolClient = {
  url: (port) => `ws://127.0.0.1:${port}/`,
  session: (room): ClientSession => ({
    opening: () => [
      frame(room, (e) => {
        encoding.writeVarUint(e, MESSAGE_AUTH);
        encoding.writeVarUint(e, AUTH_TOKEN);
        encoding.writeVarString(e, "");
      }),
      frame(room, writeEmptyStep1),
    ],
    receive,
  }),
  encodeUpdate: (room, update) => frame(room, (e) => writeSyncUpdate(e, update)),
};
