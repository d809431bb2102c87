// Adapter for Parley, using its own protocol module: auth → auth-ok → join → joined → sync step 1
// (empty state vector) → sync step 2. Every update we send is acknowledged once durable.

import {
  type DocFrame,
  decodeServerFrame,
  encodeControlFrame,
  encodeDocFrame,
  PROTOCOL_VERSION,
} from "../../protocol/index.ts";
import { ACK, type ClientAuth, type ClientSession, type Incoming, OTHER, type ProtocolClient } from "./protocol-client.ts";

function docIncoming(frame: DocFrame): Incoming {
  const message = frame.message;
  if (message.type === "update") return { kind: "update", update: message.update };
  if (message.type === "sync-step2") return { kind: "synced", bytes: message.update.length };
  return OTHER;
}

function session(room: string, auth: ClientAuth): ClientSession {
  return {
    opening: () => [encodeControlFrame({ type: "auth", token: auth.tokensByRoom?.[room] ?? "", protocol: PROTOCOL_VERSION })],
    receive(bytes, reply) {
      const frame = decodeServerFrame(bytes);
      if (frame.kind === "doc") return docIncoming(frame);
      const message = frame.message;
      switch (message.type) {
        case "ack":
          return ACK;
        case "auth-ok":
          reply(encodeControlFrame({ type: "join", conversation: room }));
          return OTHER;
        case "joined":
          reply(encodeDocFrame(room, { type: "sync-step1", stateVector: new Uint8Array([0]) }));
          return OTHER;
        case "error":
          return { kind: "error", message: `${message.code} ${message.message}` };
        case "left":
          return { kind: "error", message: `left ${message.conversation}: ${message.code ?? ""} ${message.message ?? ""}` };
        default:
          return OTHER;
      }
    },
  };
}

export const parleyClient: ProtocolClient = {
  url: (port) => `ws://127.0.0.1:${port}/ws`,
  session,
  encodeUpdate: (room, update) => encodeDocFrame(room, { type: "update", update }),
};
