// Hand-encoded Yjs (v1) updates for hostile tests: items of any content type under any client id
// and clock, and delete sets of any ranges, including what no Yjs client would ever produce
// (legacy ContentJSON, empty delete ranges, references to nothing).

import * as encoding from "lib0/encoding";
import * as Y from "yjs";

/** An item's position: a root type by name, or after/before existing items. */
export type RawPosition = { root: string; key?: string } | { origin: [number, number] | null; rightOrigin?: [number, number] | null };

/** One item to encode. */
export interface RawItem {
  client: number;
  clock: number;
  position: RawPosition;
  /** Content: `any` values (ContentAny), `json` (legacy ContentJSON), an `embed`, a `string`, a new shared type (`type`: 0 array, 1 map, 2 text). */
  content: { any: unknown[] } | { json: unknown[] } | { embed: unknown } | { string: string } | { type: number } | { deleted: number };
}

const CONTENT_REF = { deleted: 1, json: 2, string: 4, embed: 5, type: 7, any: 8 } as const;

function contentLength(content: RawItem["content"]): number {
  if ("any" in content) return content.any.length;
  if ("json" in content) return content.json.length;
  if ("string" in content) return content.string.length;
  if ("deleted" in content) return content.deleted;
  return 1;
}

/** Encodes items (grouped by client, in the order given) and a delete set as one v1 update. */
export function rawUpdate(items: RawItem[], deletes: { client: number; ranges: [number, number][] }[] = []): Uint8Array {
  const encoder = encoding.createEncoder();
  const byClient = new Map<number, RawItem[]>();
  for (const item of items) byClient.set(item.client, [...(byClient.get(item.client) ?? []), item]);
  encoding.writeVarUint(encoder, byClient.size);
  for (const [client, list] of byClient) {
    encoding.writeVarUint(encoder, list.length);
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, list[0].clock);
    let next = list[0].clock;
    for (const item of list) {
      if (item.clock !== next) throw new Error("a client's items in one update must be consecutive");
      next += contentLength(item.content);
      const kind = Object.keys(item.content)[0] as keyof typeof CONTENT_REF;
      const position = item.position;
      const origin = "origin" in position ? position.origin : null;
      const rightOrigin = "origin" in position ? (position.rightOrigin ?? null) : null;
      const key = "root" in position ? position.key : undefined;
      const info = CONTENT_REF[kind] | (origin ? 0x80 : 0) | (rightOrigin ? 0x40 : 0) | (key !== undefined ? 0x20 : 0);
      encoding.writeUint8(encoder, info);
      if (origin) {
        encoding.writeVarUint(encoder, origin[0]);
        encoding.writeVarUint(encoder, origin[1]);
      }
      if (rightOrigin) {
        encoding.writeVarUint(encoder, rightOrigin[0]);
        encoding.writeVarUint(encoder, rightOrigin[1]);
      }
      if (!origin && !rightOrigin) {
        if (!("root" in position)) throw new Error("an item without neighbours needs a root");
        encoding.writeVarUint(encoder, 1); // parent is a root type, by name
        encoding.writeVarString(encoder, position.root);
        if (key !== undefined) encoding.writeVarString(encoder, key);
      }
      const content = item.content;
      if ("any" in content) {
        encoding.writeVarUint(encoder, content.any.length);
        for (const value of content.any) encoding.writeAny(encoder, value as never);
      } else if ("json" in content) {
        encoding.writeVarUint(encoder, content.json.length);
        for (const value of content.json) encoding.writeVarString(encoder, JSON.stringify(value));
      } else if ("embed" in content) {
        encoding.writeVarString(encoder, JSON.stringify(content.embed));
      } else if ("string" in content) {
        encoding.writeVarString(encoder, content.string);
      } else if ("type" in content) {
        encoding.writeVarUint(encoder, content.type);
      } else {
        encoding.writeVarUint(encoder, content.deleted);
      }
    }
  }
  encoding.writeVarUint(encoder, deletes.length);
  for (const { client, ranges } of deletes) {
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, ranges.length);
    for (const [clock, len] of ranges) {
      encoding.writeVarUint(encoder, clock);
      encoding.writeVarUint(encoder, len);
    }
  }
  return encoding.toUint8Array(encoder);
}

/**
 * Re-encodes `update` with its structs in client sections laid out as given: each `[client, n]`
 * writes that client's next `n` structs as one section (what is not laid out is left out). Every
 * Yjs encoder writes each client once, highest id first; this writes any order, a client twice,
 * with Yjs's own struct writer. The delete set is copied.
 */
export function sectioned(update: Uint8Array, layout: [client: number, structs: number][]): Uint8Array {
  const { structs, ds } = Y.decodeUpdate(update);
  const byClient = new Map<number, (Y.Item | Y.GC)[]>();
  for (const s of structs) byClient.set(s.id.client, [...(byClient.get(s.id.client) ?? []), s as Y.Item | Y.GC]);
  const encoder = new Y.UpdateEncoderV1();
  encoding.writeVarUint(encoder.restEncoder, layout.length);
  for (const [client, n] of layout) {
    const section = (byClient.get(client) ?? []).splice(0, n);
    if (section.length !== n) throw new Error(`client ${client} has fewer structs than laid out`);
    encoding.writeVarUint(encoder.restEncoder, n);
    encoder.writeClient(client);
    encoding.writeVarUint(encoder.restEncoder, section[0].id.clock);
    for (const s of section) s.write(encoder, 0);
  }
  encoding.writeVarUint(encoder.restEncoder, ds.clients.size);
  for (const [client, ranges] of ds.clients) {
    encoding.writeVarUint(encoder.restEncoder, client);
    encoding.writeVarUint(encoder.restEncoder, ranges.length);
    for (const { clock, len } of ranges) {
      encoding.writeVarUint(encoder.restEncoder, clock);
      encoding.writeVarUint(encoder.restEncoder, len);
    }
  }
  return encoder.toUint8Array();
}

/** `update` laid out as Yjs writes it (each client once, highest id first), as the server stores it. */
export function inYjsLayout(update: Uint8Array): Uint8Array {
  const counts = new Map<number, number>();
  for (const s of Y.decodeUpdate(update).structs) counts.set(s.id.client, (counts.get(s.id.client) ?? 0) + 1);
  return sectioned(update, [...counts].sort((a, b) => b[0] - a[0]));
}
