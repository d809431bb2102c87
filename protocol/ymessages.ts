// y-protocols message bodies (sync step 1, sync step 2, update, awareness), encoded and decoded
// as plain bytes without a Y.Doc. The same bodies travel inside Parley's envelope and, unwrapped,
// over the y-websocket compatible route, so this module is shared by both.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCode } from "./codes.ts";
import { ProtocolError } from "./errors.ts";

/** y-protocols top-level message types (as y-websocket numbers them). */
export const YMessageType = { Sync: 0, Awareness: 1 } as const;
/** y-protocols sync sub-types. */
export const YSyncType = { Step1: 0, Step2: 1, Update: 2 } as const;

/** A decoded document message: the Yjs payload is a view into the frame, not a copy. */
export type DocMessage =
  | { type: "sync-step1"; stateVector: Uint8Array }
  | { type: "sync-step2"; update: Uint8Array }
  | { type: "update"; update: Uint8Array }
  | { type: "awareness"; update: Uint8Array };

/** Appends a document message body to an encoder. */
export function writeDocMessage(encoder: encoding.Encoder, message: DocMessage): void {
  if (message.type === "awareness") {
    encoding.writeVarUint(encoder, YMessageType.Awareness);
    encoding.writeVarUint8Array(encoder, message.update);
    return;
  }
  encoding.writeVarUint(encoder, YMessageType.Sync);
  switch (message.type) {
    case "sync-step1":
      encoding.writeVarUint(encoder, YSyncType.Step1);
      encoding.writeVarUint8Array(encoder, message.stateVector);
      return;
    case "sync-step2":
      encoding.writeVarUint(encoder, YSyncType.Step2);
      encoding.writeVarUint8Array(encoder, message.update);
      return;
    case "update":
      encoding.writeVarUint(encoder, YSyncType.Update);
      encoding.writeVarUint8Array(encoder, message.update);
      return;
  }
}

/** Reads a document message body; throws {@link ProtocolError} on anything malformed. */
export function readDocMessage(decoder: decoding.Decoder): DocMessage {
  try {
    const messageType = decoding.readVarUint(decoder);
    let message: DocMessage;
    if (messageType === YMessageType.Awareness) {
      message = { type: "awareness", update: decoding.readVarUint8Array(decoder) };
    } else if (messageType === YMessageType.Sync) {
      const syncType = decoding.readVarUint(decoder);
      const payload = decoding.readVarUint8Array(decoder);
      if (syncType === YSyncType.Step1) message = { type: "sync-step1", stateVector: payload };
      else if (syncType === YSyncType.Step2) message = { type: "sync-step2", update: payload };
      else if (syncType === YSyncType.Update) message = { type: "update", update: payload };
      else throw new ProtocolError(ErrorCode.MalformedFrame, `unknown sync message type ${syncType}`);
    } else {
      throw new ProtocolError(ErrorCode.MalformedFrame, `unknown document message type ${messageType}`);
    }
    if (decoding.hasContent(decoder)) {
      throw new ProtocolError(ErrorCode.MalformedFrame, "trailing bytes after document message");
    }
    return message;
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    // lib0 throws plain Errors (or RangeErrors) on truncated input.
    throw new ProtocolError(ErrorCode.MalformedFrame, "truncated document message");
  }
}

/** Encodes a bare document message (no envelope), as y-websocket sends it. */
export function encodeDocMessage(message: DocMessage): Uint8Array {
  // Written straight into one array of the exact size (the same bytes writeDocMessage gives):
  // the server encodes every committed update once this way, and lib0's growable encoder
  // (a 100-byte first chunk, then a copy out) cost more than the rest of the fan-out.
  const body = message.type === "sync-step1" ? message.stateVector : message.update;
  const head = message.type === "awareness" ? [YMessageType.Awareness] : [YMessageType.Sync, SYNC_TYPE[message.type]];
  let lengthBytes = 1;
  for (let n = body.length; n > 0x7f; n = Math.floor(n / 0x80)) lengthBytes++;
  const out = new Uint8Array(head.length + lengthBytes + body.length);
  let at = 0;
  for (const byte of head) out[at++] = byte;
  // lib0's varuint: 7 bits at a time, least significant first, high bit set on all but the last.
  let n = body.length;
  while (n > 0x7f) {
    out[at++] = 0x80 | (n & 0x7f);
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  out.set(body, at);
  return out;
}

const SYNC_TYPE: Record<Exclude<DocMessage["type"], "awareness">, number> = {
  "sync-step1": YSyncType.Step1,
  "sync-step2": YSyncType.Step2,
  update: YSyncType.Update,
};

/** Decodes a bare document message (no envelope), as y-websocket sends it. */
export function decodeDocMessage(bytes: Uint8Array): DocMessage {
  return readDocMessage(decoding.createDecoder(bytes));
}
