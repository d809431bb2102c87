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
  /** Per client, the end of its clocks in this update. */
  ends: Map<number, number>;
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

interface Local {
  /** Structs of each client in clock order. */
  byClient: Map<number, (Y.Item | Y.GC)[]>;
}

function findLocal(local: Local, client: number, clock: number): Y.Item | Y.GC | undefined {
  const structs = local.byClient.get(client);
  if (!structs) return undefined;
  let low = 0;
  let high = structs.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const s = structs[mid];
    if (clock < s.id.clock) high = mid - 1;
    else if (clock >= s.id.clock + s.length) low = mid + 1;
    else return s;
  }
  return undefined;
}

/**
 * Decodes and resolves `update` against `index`. Throws UnresolvableUpdate when an item refers to
 * an item neither in the update nor in the document, or refers to itself in a cycle; lets the
 * decoder's own errors through (the caller treats both as an undecodable update).
 */
export function readUpdate(update: Uint8Array, index: DocumentIndex, options: { tolerant?: boolean } = {}): ReadUpdate {
  // Tolerant: for content already stored (a merged state, another node's commit), what cannot be
  // placed is recorded as garbage instead of refused.
  const unresolvable = (message: string): ParentRef => {
    if (options.tolerant) return "";
    throw new UnresolvableUpdate(message);
  };
  const decoded = Y.decodeUpdate(update);
  const local: Local = { byClient: new Map() };
  const skips: Y.Skip[] = [];
  const ends = new Map<number, number>();
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
    let list = local.byClient.get(s.id.client);
    if (!list) {
      list = [];
      local.byClient.set(s.id.client, list);
    }
    list.push(s);
    ends.set(s.id.client, Math.max(ends.get(s.id.client) ?? 0, s.id.clock + s.length));
  }

  const parents = new Map<Struct, ParentRef>();
  const onStack = new Set<Struct>();

  /** The parent of an existing item at `id` when already known, or the local struct to resolve first. */
  const parentAtId = (id: Y.ID): ParentRef | Struct => {
    const s = findLocal(local, id.client, id.clock);
    if (s) {
      if (s instanceof Y.GC) return "";
      return parents.get(s) ?? s;
    }
    const known = index.parentAt(id.client, id.clock);
    if (known === undefined) return unresolvable(`an item refers to ${id.client}:${id.clock}, which does not exist`);
    return known;
  };

  /** The type-parent named by an explicit parent id: it must be an item that created a shared type. */
  const typeAt = (id: Y.ID): ParentRef => {
    const s = findLocal(local, id.client, id.clock);
    if (s) {
      if (s instanceof Y.GC) return "";
      if (!(s.content instanceof Y.ContentType) || s.id.clock !== id.clock) return unresolvable("an item's parent is not a shared type");
      return typeParent(id.client, id.clock);
    }
    const ref = typeParent(id.client, id.clock);
    if (index.depthOf(ref) !== undefined) return ref;
    const known = index.parentAt(id.client, id.clock);
    if (known === undefined) return unresolvable(`an item's parent ${id.client}:${id.clock} does not exist`);
    return unresolvable("an item's parent is not a shared type");
  };

  // Iterative: chains of neighbours can be long, and the stack must not depend on the input.
  const resolve = (start: Struct): void => {
    const stack: Struct[] = [start];
    while (stack.length > 0) {
      const s = stack[stack.length - 1];
      if (parents.has(s)) {
        stack.pop();
        continue;
      }
      if (s instanceof Y.GC || s instanceof Y.Skip) {
        parents.set(s, "");
        stack.pop();
        continue;
      }
      onStack.add(s);
      let parent: ParentRef | Struct;
      if (typeof s.parent === "string") parent = rootParent(s.parent);
      else if (s.parent instanceof Y.ID) parent = typeAt(s.parent);
      else {
        const left = s.origin ? parentAtId(s.origin) : null;
        const right = s.rightOrigin ? parentAtId(s.rightOrigin) : null;
        const pending = typeof left === "object" && left !== null ? left : typeof right === "object" && right !== null ? right : null;
        if (left === null && right === null) parent = unresolvable("an item has neither a parent nor neighbours");
        else if (pending && onStack.has(pending)) parent = unresolvable("items refer to each other in a cycle");
        else if (pending) {
          stack.push(pending);
          continue;
        }
        // Yjs: next to garbage means garbage; otherwise the left neighbour's parent, else the right's.
        else parent = left === "" || right === "" ? "" : ((left ?? right) as ParentRef);
      }
      parents.set(s, parent as ParentRef);
      onStack.delete(s);
      stack.pop();
    }
  };

  const structs: ResolvedStruct[] = [];
  for (const list of local.byClient.values()) {
    for (const s of list) {
      resolve(s);
      structs.push({ struct: s as Y.Item | Y.GC, parent: parents.get(s) as ParentRef });
    }
  }

  // Depths of the shared types created here: a root's child is 1, one level further 2, ...
  const localTypes = new Map<ParentRef, ResolvedStruct>();
  for (const r of structs) {
    if (r.struct instanceof Y.Item && r.struct.content instanceof Y.ContentType) localTypes.set(typeParent(r.struct.id.client, r.struct.id.clock), r);
  }
  const depthOf = (parent: ParentRef): number => {
    const chain: ResolvedStruct[] = [];
    let ref = parent;
    let base = 0;
    for (;;) {
      if (ref === "") break;
      const known = index.depthOf(ref);
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
        unresolvable("shared types nest in a cycle");
        break;
      }
      ref = item.parent;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      base += 1;
      chain[i].depth = base;
    }
    return base;
  };
  for (const r of localTypes.values()) if (r.depth === undefined) depthOf(typeParent(r.struct.id.client, r.struct.id.clock));

  const sections = decoding.readVarUint(decoding.createDecoder(update));
  return { structs, skips, ds: decoded.ds, ends, canonicalLayout: descending && sections === local.byClient.size };
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
