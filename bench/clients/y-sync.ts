// Plain y-protocols sync messages (sync step 1/2, update; awareness ignored) read and written as
// bytes. Shared by the adapters whose frames carry a bare or prefixed y-protocols message.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { type Incoming, OTHER } from "./protocol-client.ts";

const MESSAGE_SYNC = 0;
const SYNC_STEP1 = 0;
const SYNC_STEP2 = 1;
const SYNC_UPDATE = 2;

/** Writes a sync step 1 announcing an empty document (so the server sends us everything). */
export function writeEmptyStep1(encoder: encoding.Encoder): void {
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  encoding.writeVarUint(encoder, SYNC_STEP1);
  encoding.writeVarUint8Array(encoder, new Uint8Array([0]));
}

/** Writes a sync update message carrying `update`. */
export function writeSyncUpdate(encoder: encoding.Encoder, update: Uint8Array): void {
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  encoding.writeVarUint(encoder, SYNC_UPDATE);
  encoding.writeVarUint8Array(encoder, update);
}

/** Reads the sync message at the decoder's position (the y-protocols message type included). */
export function readSyncMessage(decoder: decoding.Decoder, messageType: number): Incoming {
  if (messageType !== MESSAGE_SYNC) return OTHER;
  const syncType = decoding.readVarUint(decoder);
  const payload = decoding.readVarUint8Array(decoder);
  if (syncType === SYNC_UPDATE) return { kind: "update", update: payload };
  if (syncType === SYNC_STEP2) return { kind: "synced", bytes: payload.length };
  return OTHER;
}

/** Reads a bare y-protocols message (y-websocket framing). */
export function readBareMessage(frame: Uint8Array): Incoming {
  const decoder = decoding.createDecoder(frame);
  return readSyncMessage(decoder, decoding.readVarUint(decoder));
}
