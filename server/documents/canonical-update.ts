// Writes an accepted update in the one layout every Yjs reader takes in full: each client's structs
// in a single section, highest client id first, as every Yjs encoder writes them. Yjs's readers
// rely on that layout: Y.mergeUpdates skips a higher client's structs that follow a lower one's,
// and Y.applyUpdate keeps only the last section of a client named twice, so an update stored as a
// hostile sender laid it out would leave a hole in the merged state and in every client that
// applied it. Uses Yjs's own struct writer, so it refuses (throws) what Yjs could not encode.

import * as encoding from "lib0/encoding";
import * as Y from "yjs";
import type { ReadUpdate } from "./update-structs.ts";

/** One client's section: its structs in clock order, the first written from `offset` on. */
interface Section {
  client: number;
  structs: (Y.Item | Y.GC)[];
  offset: number;
}

// One encoder for every update: writing is synchronous and its bytes are copied out (or dropped)
// before the next one, so allocating its buffer per update (a good part of the cost) is wasted.
const scratch = new Y.UpdateEncoderV1();
const KEEP_BUFFER_BYTES = 64 * 1024;

/**
 * Writes what `read` adds to a document that has each client's clocks below `known(client)` into
 * the scratch encoder: content the document already has is left out (a struct straddling that
 * clock is cut there, as Y.diffUpdate does), the delete set is kept whole. `read`'s structs of one
 * client must be consecutive clocks (the document rules check it).
 */
function writeCanonical(read: ReadUpdate, known: (client: number) => number): void {
  const rest = scratch.restEncoder;
  rest.cpos = 0;
  rest.bufs = [];
  if (rest.cbuf.length > KEEP_BUFFER_BYTES) rest.cbuf = new Uint8Array(100);
  // read.structs holds each client's structs together (ReadUpdate.byClient): one section per run.
  const sections: Section[] = [];
  let section: Section | undefined;
  for (const { struct } of read.structs) {
    const { client, clock } = struct.id;
    const from = known(client);
    if (clock + struct.length <= from) continue;
    if (section?.client === client) section.structs.push(struct);
    else {
      section = { client, structs: [struct], offset: Math.max(0, from - clock) };
      sections.push(section);
    }
  }
  if (sections.length > 1) sections.sort((a, b) => b.client - a.client);
  encoding.writeVarUint(rest, sections.length);
  for (const { client, structs, offset } of sections) {
    encoding.writeVarUint(rest, structs.length);
    scratch.writeClient(client);
    encoding.writeVarUint(rest, structs[0].id.clock + offset);
    structs[0].write(scratch, offset);
    for (let i = 1; i < structs.length; i++) structs[i].write(scratch, 0);
  }
  const deleted = read.ds.clients.size === 0 ? [] : [...read.ds.clients].sort((a, b) => b[0] - a[0]);
  encoding.writeVarUint(rest, deleted.length);
  for (const [client, ranges] of deleted) {
    scratch.resetDsCurVal();
    encoding.writeVarUint(rest, client);
    encoding.writeVarUint(rest, ranges.length);
    for (const { clock, len } of ranges) {
      scratch.writeDsClock(clock);
      scratch.writeDsLen(len);
    }
  }
}

/** The update `read` makes in that layout, without what the document has already (see writeCanonical). */
export function encodeCanonical(read: ReadUpdate, known: (client: number) => number): Uint8Array {
  writeCanonical(read, known);
  return scratch.toUint8Array();
}

/**
 * Throws where Yjs's writer refuses `read`, for an update whose bytes are kept as sent (already in
 * that layout, nothing left out): what is stored is then exactly what this would have written.
 */
export function checkEncodable(read: ReadUpdate): void {
  writeCanonical(read, () => 0);
}
