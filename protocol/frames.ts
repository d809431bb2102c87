// Binary WebSocket frames: one type byte, then either a msgpack control message or a document
// envelope (the conversation id, then a y-protocols message body). One socket carries many
// conversations; the envelope is what tells them apart.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCode } from "./codes.ts";
import {
  type ClientControlMessage,
  isConversationId,
  packControl,
  type ServerControlMessage,
  unpackClientControl,
  unpackServerControl,
} from "./control.ts";
import { ProtocolError } from "./errors.ts";
import { type DocMessage, readDocMessage, writeDocMessage } from "./ymessages.ts";

/** The first byte of every frame. */
export const FrameType = { Control: 0, Doc: 1 } as const;

/** A decoded document frame: which conversation, and the y-protocols message for it. */
export interface DocFrame {
  kind: "doc";
  conversation: string;
  message: DocMessage;
}
/** A decoded frame sent by a client. */
export type ClientFrame = { kind: "control"; message: ClientControlMessage } | DocFrame;
/** A decoded frame sent by the server. */
export type ServerFrame = { kind: "control"; message: ServerControlMessage } | DocFrame;

/** Encodes a control frame. */
export function encodeControlFrame(message: ClientControlMessage | ServerControlMessage): Uint8Array {
  const body = packControl(message);
  const frame = new Uint8Array(body.length + 1);
  frame[0] = FrameType.Control;
  frame.set(body, 1);
  return frame;
}

/** Encodes a document frame for a conversation. */
export function encodeDocFrame(conversation: string, message: DocMessage): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeUint8(encoder, FrameType.Doc);
  encoding.writeVarString(encoder, conversation);
  writeDocMessage(encoder, message);
  return encoding.toUint8Array(encoder);
}

function decodeDoc(bytes: Uint8Array): DocFrame {
  const decoder = decoding.createDecoder(bytes);
  decoder.pos = 1;
  let conversation: string;
  try {
    conversation = decoding.readVarString(decoder);
  } catch {
    throw new ProtocolError(ErrorCode.MalformedFrame, "truncated document envelope");
  }
  if (!isConversationId(conversation)) {
    throw new ProtocolError(ErrorCode.MalformedFrame, "invalid conversation id in document envelope");
  }
  return { kind: "doc", conversation, message: readDocMessage(decoder) };
}

/** Decodes a frame received by the server; throws {@link ProtocolError} when malformed. */
export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  if (bytes.length === 0) throw new ProtocolError(ErrorCode.MalformedFrame, "empty frame");
  if (bytes[0] === FrameType.Control) {
    return { kind: "control", message: unpackClientControl(bytes.subarray(1)) };
  }
  if (bytes[0] === FrameType.Doc) return decodeDoc(bytes);
  throw new ProtocolError(ErrorCode.MalformedFrame, `unknown frame type ${bytes[0]}`);
}

/** Decodes a frame received by a client; throws {@link ProtocolError} when malformed. */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  if (bytes.length === 0) throw new ProtocolError(ErrorCode.MalformedFrame, "empty frame");
  if (bytes[0] === FrameType.Control) {
    return { kind: "control", message: unpackServerControl(bytes.subarray(1)) };
  }
  if (bytes[0] === FrameType.Doc) return decodeDoc(bytes);
  throw new ProtocolError(ErrorCode.MalformedFrame, `unknown frame type ${bytes[0]}`);
}
