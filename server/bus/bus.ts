// The Bus seam: how committed updates and awareness reach the other nodes. The in-process bus
// (local-bus.ts) serves one node; the Redis bus (redis-bus.ts) several. A bus is at-most-once:
// the receiving side (realtime/commit-fan-out.ts) fills any gap from the store, never the bus.

import type { AccessChange } from "./access-events.ts";

/** Committed updates with consecutive sequence numbers `fromSeq`, `fromSeq + 1`, … of one conversation. */
export interface UpdatesMessage {
  kind: "updates";
  conversation: string;
  /** The node that committed them. */
  origin: string;
  fromSeq: number;
  updates: Uint8Array[];
  /** When the committing node published them (ms since the epoch, its clock): remote fan-out delay. */
  publishedAt?: number;
}

/**
 * "This node committed up to `seq`": sent when updates could not be published (the connection
 * was down), so receivers behind it read the missing ones from the store.
 */
export interface HeadMessage {
  kind: "head";
  conversation: string;
  origin: string;
  seq: number;
}

/**
 * "Seq `seq` is a snapshot entry (compaction), not an update": receivers step over it instead of
 * taking it for a lost message and reading the store.
 */
export interface SnapshotMessage {
  kind: "snapshot";
  conversation: string;
  origin: string;
  seq: number;
}

/** An awareness update (presence, cursors) from one session on another node: ephemeral. */
export interface AwarenessMessage {
  kind: "awareness";
  conversation: string;
  origin: string;
  /** The sending session on the origin node, so its states can be owned and removed as one. */
  session: string;
  update: Uint8Array;
  /**
   * The identity (organisation and person) the origin node accepted these states from: the
   * receiving node records the same claims and drops states under ids claimed by another identity.
   */
  who: string;
}

/**
 * A change of who may access what (sign-out, removed member or participant, revoked invitation),
 * sent to every node on one node-wide channel so revocations reach sockets everywhere at once.
 * `conversation` is "" (the channel is not a conversation's).
 */
export interface AccessMessage {
  kind: "access";
  conversation: "";
  origin: string;
  change: AccessChange;
}

/**
 * "Organisation `org`'s partner event stream reaches `cursor`": wakes the stream's followers on
 * other nodes (the events themselves are in the shared event store). On the node-wide channel.
 */
export interface EventHeadMessage {
  kind: "event-head";
  conversation: "";
  origin: string;
  org: string;
  cursor: number;
}

/** Anything that travels on the bus. */
export type BusMessage = UpdatesMessage | HeadMessage | SnapshotMessage | AwarenessMessage | AccessMessage | EventHeadMessage;

/** What a bus reports to its node. */
export interface BusHandler {
  /** A message from another node (the bus drops its own node's messages). */
  message(message: BusMessage): void;
  /**
   * Messages for these conversations may have been missed: their subscription was just
   * (re-)established, after a first subscribe or a reconnect. Read what is missing from the store.
   */
  resync(conversations: readonly string[]): void;
}

/** Connection state, for /readyz and logs. */
export interface BusHealth {
  /** "local": in-process bus; "ok": connected; "down": reconnecting (the node serves its own clients). */
  state: "local" | "ok" | "down";
}

/** Transport of committed updates and awareness between nodes. */
export interface Bus {
  /** This node's id, carried as the origin of everything it publishes. */
  readonly nodeId: string;
  /** False for the in-process bus: there is nobody else, so nothing can be missed. */
  readonly shared: boolean;
  /** Sets the receiver of incoming messages and resync notices (once, at wiring time). */
  setHandler(handler: BusHandler): void;
  /** Publishes one committed update; never throws (a lost publish is repaired by a later head message or a gap). */
  publishUpdate(conversation: string, seq: number, update: Uint8Array): void;
  /** Publishes that `seq` is a snapshot entry; a lost one only costs receivers a store read. */
  publishSnapshot(conversation: string, seq: number): void;
  /**
   * Publishes an access change to every other node. At most once, like everything on the bus:
   * nodes also re-validate their sockets periodically, so a lost one only delays the effect.
   */
  publishAccess(change: AccessChange): void;
  /** Sets the receiver of other nodes' access changes (once, at wiring time). */
  onAccess(listener: (change: AccessChange) => void): void;
  /** Publishes that an organisation's event stream grew. At most once: followers also poll (events/event-wake.ts). */
  publishEventHead(org: string, cursor: number): void;
  /** Sets the receiver of other nodes' event stream heads (once, at wiring time). */
  onEventHead(listener: (org: string, cursor: number) => void): void;
  /** Publishes an awareness update of a local session; lost ones are acceptable. */
  publishAwareness(conversation: string, session: string, update: Uint8Array, who: string): void;
  /** Counts one more local interest in a conversation; the first one subscribes. */
  subscribe(conversation: string): void;
  /** Counts one interest fewer; the last one unsubscribes. */
  unsubscribe(conversation: string): void;
  health(): BusHealth;
  /** Sends what is queued, then disconnects. */
  close(): Promise<void>;
}
