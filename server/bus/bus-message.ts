// The bus's binary message format, encoder and decoder side by side. A message is a version
// byte, a kind byte, the origin node and the conversation, then the kind's fields; update bytes
// travel as-is (no base64, no JSON), so a receiver can hand them to Yjs without copying.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import type { AccessChange } from "./access-events.ts";
import type { BusMessage } from "./bus.ts";

/** Bumped when the layout changes; a node drops messages of a version it does not know. */
const FORMAT_VERSION = 1;
/**
 * Version 1 plus the publish time at the end of an updates message. Only updates messages that
 * carry one are written in it, so every other message still reaches nodes that know version 1 only.
 */
const TIMED_UPDATES_VERSION = 2;

const Kind = { updates: 1, head: 2, awareness: 3, snapshot: 4, access: 5, "event-head": 6 } as const;

/** Thrown for a message that cannot be decoded (another version, or corrupt). */
export class BusMessageError extends Error {
  override readonly name = "BusMessageError";
}

/** Checks an access change's shape field by field (it arrives over the network). */
function parseAccessChange(json: string): AccessChange {
  const value = JSON.parse(json) as Record<string, unknown>;
  const text = (key: string) => {
    if (typeof value[key] !== "string") throw new BusMessageError(`access change without ${key}`);
    return value[key] as string;
  };
  switch (value.kind) {
    case "session-revoked":
      return { kind: "session-revoked", family: text("family"), userId: text("userId") };
    case "user-revoked":
      return { kind: "user-revoked", userId: text("userId") };
    case "membership-changed":
      return { kind: "membership-changed", orgId: text("orgId"), userId: text("userId") };
    case "conversation-access-changed":
      return { kind: "conversation-access-changed", conversationId: text("conversationId") };
    default:
      throw new BusMessageError("unknown access change");
  }
}

/** Encodes a bus message. */
export function encodeBusMessage(message: BusMessage): Uint8Array {
  const encoder = encoding.createEncoder();
  const timed = message.kind === "updates" && message.publishedAt !== undefined;
  encoding.writeUint8(encoder, timed ? TIMED_UPDATES_VERSION : FORMAT_VERSION);
  encoding.writeUint8(encoder, Kind[message.kind]);
  encoding.writeVarString(encoder, message.origin);
  encoding.writeVarString(encoder, message.conversation);
  switch (message.kind) {
    case "updates":
      encoding.writeVarUint(encoder, message.fromSeq);
      encoding.writeVarUint(encoder, message.updates.length);
      for (const update of message.updates) encoding.writeVarUint8Array(encoder, update);
      if (message.publishedAt !== undefined) encoding.writeVarUint(encoder, message.publishedAt);
      break;
    case "head":
    case "snapshot":
      encoding.writeVarUint(encoder, message.seq);
      break;
    case "awareness":
      encoding.writeVarString(encoder, message.session);
      encoding.writeVarUint8Array(encoder, message.update);
      encoding.writeVarString(encoder, message.who);
      break;
    case "access":
      encoding.writeVarString(encoder, JSON.stringify(message.change));
      break;
    case "event-head":
      encoding.writeVarString(encoder, message.org);
      encoding.writeVarUint(encoder, message.cursor);
      break;
  }
  return encoding.toUint8Array(encoder);
}

/** Decodes a bus message; throws {@link BusMessageError} when it cannot. */
export function decodeBusMessage(bytes: Uint8Array): BusMessage {
  try {
    const decoder = decoding.createDecoder(bytes);
    const version = decoding.readUint8(decoder);
    if (version !== FORMAT_VERSION && version !== TIMED_UPDATES_VERSION) throw new BusMessageError(`unknown bus message version ${version}`);
    const kind = decoding.readUint8(decoder);
    if (version === TIMED_UPDATES_VERSION && kind !== Kind.updates) throw new BusMessageError(`bus message version ${version} is for updates only`);
    const origin = decoding.readVarString(decoder);
    const conversation = decoding.readVarString(decoder);
    let message: BusMessage;
    switch (kind) {
      case Kind.updates: {
        const fromSeq = decoding.readVarUint(decoder);
        const count = decoding.readVarUint(decoder);
        const updates: Uint8Array[] = [];
        for (let i = 0; i < count; i++) updates.push(decoding.readVarUint8Array(decoder));
        message = { kind: "updates", origin, conversation, fromSeq, updates };
        if (version === TIMED_UPDATES_VERSION) message.publishedAt = decoding.readVarUint(decoder);
        break;
      }
      case Kind.head:
        message = { kind: "head", origin, conversation, seq: decoding.readVarUint(decoder) };
        break;
      case Kind.snapshot:
        message = { kind: "snapshot", origin, conversation, seq: decoding.readVarUint(decoder) };
        break;
      case Kind.awareness: {
        const session = decoding.readVarString(decoder);
        const update = decoding.readVarUint8Array(decoder);
        // A node of an earlier version sends no identity: its states are relayed unchecked, as before.
        const who = decoding.hasContent(decoder) ? decoding.readVarString(decoder) : "";
        message = { kind: "awareness", origin, conversation, session, update, who };
        break;
      }
      case Kind.access:
        message = { kind: "access", origin, conversation: "", change: parseAccessChange(decoding.readVarString(decoder)) };
        break;
      case Kind["event-head"]:
        message = { kind: "event-head", origin, conversation: "", org: decoding.readVarString(decoder), cursor: decoding.readVarUint(decoder) };
        break;
      default:
        throw new BusMessageError(`unknown bus message kind ${kind}`);
    }
    if (decoding.hasContent(decoder)) throw new BusMessageError("trailing bytes in bus message");
    return message;
  } catch (error) {
    if (error instanceof BusMessageError) throw error;
    throw new BusMessageError("bus message could not be decoded");
  }
}
