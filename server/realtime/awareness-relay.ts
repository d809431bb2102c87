// Awareness (presence, cursors) per conversation, relayed as bytes. Each awareness client id is
// bound to the connection that holds it for the life of that connection, and to the identity
// that first announced it beyond that (awareness-claims.ts), on every node: nobody can set or remove another's
// state, claim an id another live connection holds, or squat a disconnected owner's id. The
// latest state of each client is kept for joiners, and a connection's states are removed when
// it leaves. Awareness is ephemeral: never stored, never audited.

import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import { AwarenessClaims, type DocumentClientOwner } from "./awareness-claims.ts";

/** Awareness client ids one socket may own in one conversation. */
const MAX_CLIENTS_PER_OWNER = 4;

interface AwarenessEntry {
  owner: object;
  /** The identity behind `owner` (organisation and person). */
  who: string;
  clock: number;
  /** JSON of the state, or "null" once removed. */
  state: string;
}

/** One decoded awareness entry. */
interface DecodedEntry {
  clientId: number;
  clock: number;
  state: string;
}

function decodeAwarenessUpdate(update: Uint8Array): DecodedEntry[] {
  try {
    const decoder = decoding.createDecoder(update);
    const count = decoding.readVarUint(decoder);
    if (count > MAX_CLIENTS_PER_OWNER) throw new ParleyError(ErrorCode.MalformedFrame, "too many awareness states");
    const entries: DecodedEntry[] = [];
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      const state = decoding.readVarString(decoder);
      JSON.parse(state); // must be JSON, as y-protocols will JSON.parse it on every peer
      entries.push({ clientId, clock, state });
    }
    if (decoding.hasContent(decoder)) throw new Error("trailing bytes");
    return entries;
  } catch (error) {
    if (error instanceof ParleyError) throw error;
    throw new ParleyError(ErrorCode.MalformedFrame, "awareness update could not be decoded");
  }
}

function encodeEntries(entries: Iterable<[number, { clock: number; state: string }]>): Uint8Array | null {
  const list = [...entries];
  if (list.length === 0) return null;
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, list.length);
  for (const [clientId, { clock, state }] of list) {
    encoding.writeVarUint(encoder, clientId);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, state);
  }
  return encoding.toUint8Array(encoder);
}

/** Awareness states of one conversation and who owns each client id. */
export class AwarenessRelay {
  private readonly entries = new Map<number, AwarenessEntry>();

  /** `claims` outlives this relay (a channel is dropped with its last connection; claims are not). */
  constructor(
    private readonly conversation = "",
    private readonly claims = new AwarenessClaims(),
    private readonly documentOwner: DocumentClientOwner = () => undefined,
  ) {}

  /** True when `clientId` is `who`'s to announce: not held live by, first claimed by, nor written with by another identity. */
  private mayClaim(clientId: number, who: string): boolean {
    const existing = this.entries.get(clientId);
    if (existing && existing.who !== who) return false;
    const writer = this.documentOwner(this.conversation, clientId);
    if (writer !== undefined && writer !== who) return false;
    return this.claims.claim(this.conversation, clientId, who);
  }

  /**
   * Filters an update another node accepted from `who` before it goes to this node's clients:
   * the origin's claims are recorded here too, and entries under ids another identity holds here
   * are dropped. Returns the bytes to relay, or null when nothing is left (or it does not decode).
   */
  acceptRemote(update: Uint8Array, who: string): Uint8Array | null {
    if (who === "") return update; // a node of an earlier version: it checked, but names nobody
    let decoded: DecodedEntry[];
    try {
      decoded = decodeAwarenessUpdate(update);
    } catch {
      return null;
    }
    const accepted = decoded.filter((entry) => this.mayClaim(entry.clientId, who));
    if (accepted.length === 0) return null;
    return accepted.length === decoded.length ? update : encodeEntries(accepted.map((e) => [e.clientId, e]));
  }

  /**
   * Records the entries of an update from `owner` (a connection of identity `who`) and returns
   * what to relay. Entries for client ids held by a live connection of another identity, or first
   * claimed by another identity, are dropped, not relayed: y-websocket providers echo their peers'
   * states, and nobody may set another's. The same identity on a new connection takes its ids
   * over (a reconnect the server has not yet noticed). `update` is the bytes to relay (the
   * original when nothing was dropped), or null when nothing changed; `foreign` counts dropped
   * entries. Throws {@link ParleyError} when the update is malformed or claims too many ids.
   */
  accept(owner: object, update: Uint8Array, who = ""): { update: Uint8Array | null; foreign: number } {
    const decoded = decodeAwarenessUpdate(update);
    let owned = 0;
    for (const entry of this.entries.values()) if (entry.owner === owner) owned++;
    const accepted: DecodedEntry[] = [];
    let foreign = 0;
    for (const entry of decoded) {
      const existing = this.entries.get(entry.clientId);
      if (!this.mayClaim(entry.clientId, who)) {
        foreign++;
        continue;
      }
      const mine = existing?.owner === owner;
      if (!mine && ++owned > MAX_CLIENTS_PER_OWNER) {
        throw new ParleyError(ErrorCode.Forbidden, "too many awareness client ids for one connection");
      }
      // A stale clock is ignored by y-protocols too; do not relay it.
      if (existing && existing.clock > entry.clock) continue;
      this.entries.set(entry.clientId, { owner, who, clock: entry.clock, state: entry.state });
      accepted.push(entry);
    }
    if (accepted.length === 0) return { update: null, foreign };
    const relay = accepted.length === decoded.length ? update : encodeEntries(accepted.map((e) => [e.clientId, e]));
    return { update: relay, foreign };
  }

  /** Every live state, encoded as one awareness update for a joining client (null if none). */
  snapshot(): Uint8Array | null {
    const live: [number, AwarenessEntry][] = [];
    for (const [clientId, entry] of this.entries) if (entry.state !== "null") live.push([clientId, entry]);
    return encodeEntries(live);
  }

  /** Forgets `owner`'s client ids; returns the awareness update announcing their removal. */
  removeOwner(owner: object): Uint8Array | null {
    const removed: [number, { clock: number; state: string }][] = [];
    for (const [clientId, entry] of this.entries) {
      if (entry.owner !== owner) continue;
      this.entries.delete(clientId);
      // Same clock, not clock+1: y-protocols accepts a null state at an equal clock, and the
      // client can re-announce itself at clock+1 when it comes back.
      if (entry.state !== "null") removed.push([clientId, { clock: entry.clock, state: "null" }]);
    }
    return encodeEntries(removed);
  }

  /** True when no client has a state here. */
  get isEmpty(): boolean {
    return this.entries.size === 0;
  }
}
