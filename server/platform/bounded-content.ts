// Turns stored document content (Yjs types and the plain values inside them) into plain JSON data
// without recursion and within limits. Yjs's own toJSON() and JSON.stringify recurse once per
// level: a stored value nested 40 000 deep overflows the stack on every read. Here the work is
// bounded per stored byte: past the depth or the node budget, the read fails for that request
// only, with a clear error, and the server keeps serving.

import * as Y from "yjs";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "./errors.ts";

/** How deep and how large a value a read may turn into plain data. */
export interface ContentLimits {
  /** Deepest nesting (a top-level value is depth 1). */
  maxDepth: number;
  /** Most values (objects, arrays and leaves together) in one conversion. */
  maxNodes: number;
}

/** The limits every read of stored content uses, unless it says otherwise. */
export const READ_LIMITS: ContentLimits = { maxDepth: 64, maxNodes: 1_000_000 };

function tooComplex(what: string): ParleyError {
  return new ParleyError(
    ErrorCode.ContentTooComplex,
    `the stored content is ${what} than this server reads; nothing was changed (restore the conversation to an earlier point to repair it)`,
  );
}

/**
 * The plain-data form of `value`: Y.Map → object, Y.Array → array, Y.Text → string, XML elements →
 * null, Uint8Array kept, other plain values copied. Throws ContentTooComplex
 * (for this request) past `limits`. Iterative: the stack depth does not grow with the content's.
 */
export function toPlainContent(value: unknown, limits: ContentLimits = READ_LIMITS): unknown {
  let nodes = 0;
  const count = () => {
    if (++nodes > limits.maxNodes) throw tooComplex("larger");
  };
  // Work items: convert `source` at `depth`, store it with `assign`.
  const stack: { source: unknown; depth: number; assign: (plain: unknown) => void }[] = [];
  let result: unknown;
  stack.push({ source: value, depth: 1, assign: (plain) => (result = plain) });
  while (stack.length > 0) {
    const { source, depth, assign } = stack.pop() as (typeof stack)[number];
    count();
    if (depth > limits.maxDepth) throw tooComplex("nested deeper");
    const children = childrenOf(source);
    if (children === null) {
      assign(leafOf(source));
      continue;
    }
    // Children are pushed last first, so they are converted (and object keys inserted) in order.
    if (children.kind === "array") {
      const array: unknown[] = new Array(children.items.length);
      assign(array);
      for (let index = children.items.length - 1; index >= 0; index--) {
        stack.push({ source: children.items[index], depth: depth + 1, assign: (plain) => (array[index] = plain) });
      }
    } else {
      const object: Record<string, unknown> = {};
      assign(object);
      for (let index = children.entries.length - 1; index >= 0; index--) {
        const [key, child] = children.entries[index];
        // An own property whatever the key: assigning "__proto__" would set the object's prototype
        // instead (dropping the key, and letting stored content choose what the object inherits).
        const define = (plain: unknown) => Object.defineProperty(object, key, { value: plain, enumerable: true, writable: true, configurable: true });
        stack.push({ source: child, depth: depth + 1, assign: define });
      }
    }
  }
  return result;
}

/** Checks `value` against the limits without building anything (e.g. before JSON.stringify). */
export function assertWithinLimits(value: unknown, limits: ContentLimits = READ_LIMITS): void {
  toPlainContent(value, limits);
}

/** A container's children (array items or key/value pairs), or null for a leaf. */
function childrenOf(value: unknown): { kind: "array"; items: unknown[] } | { kind: "object"; entries: [string, unknown][] } | null {
  if (value instanceof Y.Map) return { kind: "object", entries: [...(value as Y.Map<unknown>).entries()] };
  if (value instanceof Y.Array) return { kind: "array", items: (value as Y.Array<unknown>).toArray() };
  if (value instanceof Y.AbstractType) return null; // Y.Text and XML: leaves, see leafOf
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return null;
  if (Array.isArray(value)) return { kind: "array", items: value };
  return { kind: "object", entries: Object.entries(value as Record<string, unknown>) };
}

function leafOf(value: unknown): unknown {
  if (value instanceof Y.Text) return value.toString();
  // XML elements and fragments render by recursion: not offered as plain data at all.
  if (value instanceof Y.AbstractType) return null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "function" || typeof value === "symbol") return null;
  return value;
}

/**
 * A Y.Doc holding `state`, for reading or for building a server-side edit. Yjs applies, deletes
 * and garbage-collects shared types by recursion: a state it cannot apply within the stack is
 * ContentTooComplex for this request, never an exception that escapes it.
 */
export function materialise(state: Uint8Array): Y.Doc {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, state);
  } catch (error) {
    if (error instanceof RangeError) throw tooComplex("nested deeper");
    throw error;
  }
  return doc;
}
