// Builds, byte by byte, the Yjs update of a map nested `depth` levels deep under a root type:
// what an older server acknowledged (finding 2 of issue 18). Building it through a Y.Doc takes
// quadratic time (every change bubbles up the whole path), so the structs are encoded directly
// in the v1 update format: item i's parent is item i-1, each one a Y.Map content.

import * as encoding from "lib0/encoding";

const CONTENT_TYPE = 7;
const HAS_PARENT_SUB = 0x20;
const YMAP = 1;

/**
 * `root`: the root type the first map sits in (an array by `rootKind: "array"`, pushed; or a
 * map, under key "deep"). Every deeper map sits under key "a" of the one before.
 */
export function deeplyNestedUpdate(depth: number, options: { client?: number; root?: string; rootKind?: "array" | "map" } = {}): Uint8Array {
  const client = options.client ?? 424242;
  const root = options.root ?? "messages";
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 1); // one client
  encoding.writeVarUint(encoder, depth);
  encoding.writeVarUint(encoder, client);
  encoding.writeVarUint(encoder, 0); // first clock
  for (let i = 0; i < depth; i++) {
    const inRootMap = i === 0 && options.rootKind === "map";
    const parentSub = i > 0 || inRootMap;
    encoding.writeUint8(encoder, CONTENT_TYPE | (parentSub ? HAS_PARENT_SUB : 0));
    if (i === 0) {
      encoding.writeVarUint(encoder, 1); // parent is a root type, by name
      encoding.writeVarString(encoder, root);
    } else {
      encoding.writeVarUint(encoder, 0); // parent is the item before
      encoding.writeVarUint(encoder, client);
      encoding.writeVarUint(encoder, i - 1);
    }
    if (parentSub) encoding.writeVarString(encoder, i === 0 ? "deep" : "a");
    encoding.writeVarUint(encoder, YMAP);
  }
  encoding.writeVarUint(encoder, 0); // empty delete set
  return encoding.toUint8Array(encoder);
}

