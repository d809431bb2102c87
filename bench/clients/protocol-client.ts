// The seam between the load generator and a server's wire protocol. One small adapter per server
// (this folder) turns "join room R", "send update U" and "what did this frame carry?" into bytes,
// so the generator itself never knows which server it is talking to.

/** What one received frame carried, as far as the load generator cares. */
export type Incoming =
  /** A Yjs update broadcast by the server (a view into the frame, not a copy). */
  | { kind: "update"; update: Uint8Array }
  /** The initial sync finished; `bytes` is the size of the document state received. */
  | { kind: "synced"; bytes: number }
  /** One of our writes is durable (Parley's ack). */
  | { kind: "ack" }
  /** The server refused something; the message is for the report. */
  | { kind: "error"; message: string }
  /** Anything else (awareness, sync status, the server's own sync step 1). */
  | { kind: "other" };

/** Credentials a client presents, where the protocol has any. */
export interface ClientAuth {
  /** Parley: the token for each room, covering that room only. */
  tokensByRoom?: Record<string, string>;
}

/** One socket's view of the protocol: the handshake state lives here, one per connection. */
export interface ClientSession {
  /** Frames to send as soon as the socket opens. */
  opening(): Uint8Array[];
  /** Reads one frame, sending any handshake replies through `reply`. */
  receive(frame: Uint8Array, reply: (frame: Uint8Array) => void): Incoming;
}

/** A server's protocol, as the load generator uses it. */
export interface ProtocolClient {
  /** The WebSocket URL a client of `room` connects to (Parley's carries the room's token). */
  url(port: number, room: string, auth?: ClientAuth): string;
  /** A fresh per-connection session that joins `room`. */
  session(room: string, auth: ClientAuth): ClientSession;
  /** Wraps a Yjs update in this protocol's update frame (called before the clock starts). */
  encodeUpdate(room: string, update: Uint8Array): Uint8Array;
}

export const OTHER: Incoming = { kind: "other" };
export const ACK: Incoming = { kind: "ack" };
