// Reads a Yjs update as bytes into what the document rules reason about: each struct with the
// parent Yjs will give it (explicit, or inherited from its left or right neighbour, in this update
// or already in the document), the nesting depth of the shared types it creates, and its delete
// set. Mirrors Item.getMissing in yjs (src/structs/Item.js) without building a Y.Doc.

import * as decoding from "lib0/decoding";
import * as Y from "yjs";
import { type DocumentIndex, type IndexEffects, type ParentRef, rootParent, typeParent } from "./document-index.ts";

type Struct = Y.Item | Y.GC | Y.Skip;

/** One struct of an update, with its parent resolved. */
export interface ResolvedStruct {
  struct: Y.Item | Y.GC;
  /** The parent Yjs gives it; "" for garbage (GC structs, or next to one). */
  parent: ParentRef;
  /** Nesting depth of the shared type this item creates (ContentType only). */
  depth?: number;
}

/** An update read for the rules. */
export interface ReadUpdate {
  structs: ResolvedStruct[];
  /** Skip structs (gaps in a client's clocks): never in an update a real client sends. */
  skips: Y.Skip[];
  ds: ReturnType<typeof Y.decodeUpdate>["ds"];
  /** Each client's structs, in the order read (`structs` lists them client after client, the same way). */
  byClient: ReadonlyMap<number, readonly ResolvedStruct[]>;
  /**
   * The update lists each client's structs in one section, highest client id first, as every Yjs
   * encoder does (the layout Yjs's readers need to take all of it, see ./canonical-update.ts).
   */
  canonicalLayout: boolean;
}

/** Why an update cannot be read consistently (a reference to nothing, a cycle). */
export class UnresolvableUpdate extends Error {
  override name = "UnresolvableUpdate";
}

/** A struct of the update being read, resolved in place (no per-update maps of structs). */
interface Node extends ResolvedStruct {
  /** Resolution state: 0 not yet, 1 on the resolution stack, 2 resolved. */
  state: 0 | 1 | 2;
}

/** What reading one update works with; plain data, so reading creates no closures. */
interface Reading {
  index: DocumentIndex;
  tolerant: boolean;
  /** Structs of each client in clock order. */
  byClient: Map<number, Node[]>;
}

function findLocal(reading: Reading, client: number, clock: number): Node | undefined {
  const nodes = reading.byClient.get(client);
  if (!nodes) return undefined;
  let low = 0;
  let high = nodes.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const s = nodes[mid].struct;
    if (clock < s.id.clock) high = mid - 1;
    else if (clock >= s.id.clock + s.length) low = mid + 1;
    else return nodes[mid];
  }
  return undefined;
}

// Tolerant: for content already stored (a merged state, another node's commit), what cannot be
// placed is recorded as garbage instead of refused.
function unresolvable(reading: Reading, message: string): ParentRef {
  if (reading.tolerant) return "";
  throw new UnresolvableUpdate(message);
}

/** The parent of an existing item at `id` when already known, or the local struct to resolve first. */
function parentAtId(reading: Reading, id: Y.ID): ParentRef | Node {
  const node = findLocal(reading, id.client, id.clock);
  if (node) {
    if (node.struct instanceof Y.GC) return "";
    return node.state === 2 ? node.parent : node;
  }
  const known = reading.index.parentAt(id.client, id.clock);
  if (known === undefined) return unresolvable(reading, `an item refers to ${id.client}:${id.clock}, which does not exist`);
  return known;
}

/** The type-parent named by an explicit parent id: it must be an item that created a shared type. */
function typeAt(reading: Reading, id: Y.ID): ParentRef {
  const node = findLocal(reading, id.client, id.clock);
  if (node) {
    const s = node.struct;
    if (s instanceof Y.GC) return "";
    if (!(s.content instanceof Y.ContentType) || s.id.clock !== id.clock) return unresolvable(reading, "an item's parent is not a shared type");
    return typeParent(id.client, id.clock);
  }
  const ref = typeParent(id.client, id.clock);
  if (reading.index.depthOf(ref) !== undefined) return ref;
  const known = reading.index.parentAt(id.client, id.clock);
  if (known === undefined) return unresolvable(reading, `an item's parent ${id.client}:${id.clock} does not exist`);
  return unresolvable(reading, "an item's parent is not a shared type");
}

// Iterative: chains of neighbours can be long, and the stack must not depend on the input.
function resolve(reading: Reading, start: Node): void {
  const stack: Node[] = [start];
  while (stack.length > 0) {
    const node = stack[stack.length - 1];
    if (node.state === 2) {
      stack.pop();
      continue;
    }
    const s = node.struct;
    if (s instanceof Y.GC) {
      node.parent = "";
      node.state = 2;
      stack.pop();
      continue;
    }
    node.state = 1;
    let parent: ParentRef;
    if (typeof s.parent === "string") parent = rootParent(s.parent);
    else if (s.parent instanceof Y.ID) parent = typeAt(reading, s.parent);
    else {
      const left = s.origin ? parentAtId(reading, s.origin) : null;
      const right = s.rightOrigin ? parentAtId(reading, s.rightOrigin) : null;
      const pending = typeof left === "object" && left !== null ? left : typeof right === "object" && right !== null ? right : null;
      if (left === null && right === null) parent = unresolvable(reading, "an item has neither a parent nor neighbours");
      else if (pending && pending.state === 1) parent = unresolvable(reading, "items refer to each other in a cycle");
      else if (pending) {
        stack.push(pending);
        continue;
      }
      // Yjs: next to garbage means garbage; otherwise the left neighbour's parent, else the right's.
      else parent = left === "" || right === "" ? "" : ((left ?? right) as ParentRef);
    }
    node.parent = parent;
    node.state = 2;
    stack.pop();
  }
}

/** Sets the depth of the shared types created here: a root's child is 1, one level further 2, ... */
function resolveTypeDepths(reading: Reading, nodes: Node[]): void {
  let localTypes: Map<ParentRef, Node> | undefined;
  for (const node of nodes) {
    const s = node.struct;
    if (!(s instanceof Y.Item && s.content instanceof Y.ContentType)) continue;
    localTypes ??= new Map();
    localTypes.set(typeParent(s.id.client, s.id.clock), node);
  }
  if (!localTypes) return;
  for (const [ref, node] of localTypes) if (node.depth === undefined) typeDepth(reading, localTypes, ref);
}

function typeDepth(reading: Reading, localTypes: Map<ParentRef, Node>, parent: ParentRef): number {
  const chain: Node[] = [];
  let ref = parent;
  let base = 0;
  for (;;) {
    if (ref === "") break;
    const known = reading.index.depthOf(ref);
    if (known !== undefined && !localTypes.has(ref)) {
      base = known;
      break;
    }
    const item = localTypes.get(ref);
    if (!item) break;
    if (item.depth !== undefined) {
      base = item.depth;
      break;
    }
    chain.push(item);
    if (chain.length > localTypes.size) {
      unresolvable(reading, "shared types nest in a cycle");
      break;
    }
    ref = item.parent;
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    base += 1;
    chain[i].depth = base;
  }
  return base;
}

/**
 * Decodes and resolves `update` against `index`. Throws UnresolvableUpdate when an item refers to
 * an item neither in the update nor in the document, or refers to itself in a cycle; lets the
 * decoder's own errors through (the caller treats both as an undecodable update).
 */
export function readUpdate(update: Uint8Array, index: DocumentIndex, options: { tolerant?: boolean } = {}): ReadUpdate {
  const decoded = Y.decodeUpdate(update);
  const reading: Reading = { index, tolerant: options.tolerant === true, byClient: new Map() };
  const skips: Y.Skip[] = [];
  // Clients only ever descending, and as many sections as clients: one section each, in order.
  let descending = true;
  let previousClient = -1;
  for (const s of decoded.structs as Struct[]) {
    if (s.id.client !== previousClient) {
      if (previousClient !== -1 && s.id.client > previousClient) descending = false;
      previousClient = s.id.client;
    }
    if (s instanceof Y.Skip) {
      skips.push(s);
      continue;
    }
    let list = reading.byClient.get(s.id.client);
    if (!list) {
      list = [];
      reading.byClient.set(s.id.client, list);
    }
    list.push({ struct: s, parent: "", state: 0 });
  }

  const structs: Node[] = [];
  for (const list of reading.byClient.values()) {
    for (const node of list) {
      resolve(reading, node);
      structs.push(node);
    }
  }
  resolveTypeDepths(reading, structs);

  const sections = decoding.readVarUint(decoding.createDecoder(update));
  return { structs, skips, ds: decoded.ds, byClient: reading.byClient, canonicalLayout: descending && sections === reading.byClient.size };
}

/** The end of `client`'s clocks in the update (0 when it has no structs there). */
export function clockEnd(read: ReadUpdate, client: number): number {
  let end = 0;
  for (const { struct } of read.byClient.get(client) ?? []) end = Math.max(end, struct.id.clock + struct.length);
  return end;
}

/** What recording `read` in the index adds (every struct, known clocks are skipped by the index). */
export function effectsOf(read: ReadUpdate): IndexEffects {
  const effects: IndexEffects = { runs: [], types: [] };
  for (const { struct, parent, depth } of read.structs) {
    effects.runs.push({ client: struct.id.client, start: struct.id.clock, end: struct.id.clock + struct.length, parent });
    if (depth !== undefined) effects.types.push([typeParent(struct.id.client, struct.id.clock), depth]);
  }
  return effects;
}
