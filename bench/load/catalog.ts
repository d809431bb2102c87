// Recognises which pre-generated update a received Yjs update is, without a Y.Doc: the fast path
// reads the first struct's (client, clock) from the update header and checks the length against
// the pre-generated update; anything else (a server that merged or re-encoded updates) falls back
// to Y.parseUpdateMeta and credits every update whose clock range it covers.

import * as Y from "yjs";
import { CLIENT_BASE, type WriterUpdates } from "./writers.ts";

/** Called once per (writer, index) an update carries. */
export type Visit = (writer: number, index: number) => void;

let pos = 0;
function readVarUint(bytes: Uint8Array): number {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= bytes.length) return -1;
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return value;
    shift += 7;
    if (shift > 49) return -1;
  }
}

export class UpdateCatalog {
  private readonly lengths: Int32Array;

  constructor(private readonly source: WriterUpdates) {
    this.lengths = Int32Array.from(source.updates, (u) => u.length);
  }

  /** Calls `visit` for every catalogued update `update` carries; returns how many. */
  identify(update: Uint8Array, visit: Visit): number {
    pos = 0;
    const clients = readVarUint(update);
    readVarUint(update); // number of structs of the first client
    const client = readVarUint(update);
    const clock = readVarUint(update);
    if (clients === 1) {
      const writer = client - CLIENT_BASE;
      if (writer >= 0 && writer < this.source.writers) {
        const index = this.indexAt(writer, clock);
        if (index >= 0 && this.lengths[writer * this.source.perWriter + index] === update.length) {
          visit(writer, index);
          return 1;
        }
      }
    }
    return this.identifySlow(update, visit);
  }

  private identifySlow(update: Uint8Array, visit: Visit): number {
    let meta: { from: Map<number, number>; to: Map<number, number> };
    try {
      meta = Y.parseUpdateMeta(update);
    } catch {
      return 0;
    }
    let found = 0;
    for (const [client, to] of meta.to) {
      const writer = client - CLIENT_BASE;
      if (writer < 0 || writer >= this.source.writers) continue;
      const from = meta.from.get(client) ?? 0;
      const base = writer * this.source.perWriter;
      for (let i = 0; i < this.source.perWriter; i++) {
        const start = this.source.clockStarts[base + i];
        if (start >= to) break;
        if (start >= from) {
          visit(writer, i);
          found++;
        }
      }
    }
    return found;
  }

  /** The index of writer's update starting exactly at `clock`, or -1. */
  private indexAt(writer: number, clock: number): number {
    const starts = this.source.clockStarts;
    let lo = writer * this.source.perWriter;
    let hi = lo + this.source.perWriter - 1;
    const base = lo;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const value = starts[mid];
      if (value === clock) return mid - base;
      if (value < clock) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
