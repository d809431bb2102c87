// The document rules, checked on every update as bytes before it may enter the log: a pure
// function of the update, the conversation's index (../documents/document-index.ts) and the
// sender. `messages` only grows, by plain entries authored by the sender; client ids belong to
// their first writer; other root types stay within depth, item and size limits; and whatever is
// accepted merges and applies cleanly for every client. No Y.Doc is built.

import * as Y from "yjs";
import { ErrorCode, isConversationMessage, isConversationRetraction } from "../../protocol/index.ts";
import { type DocumentIndex, type IndexEffects, MESSAGES_PARENT } from "../documents/document-index.ts";
import { checkEncodable, encodeCanonical } from "../documents/canonical-update.ts";
import { clockEnd, effectsOf, type ReadUpdate, readUpdate, UnresolvableUpdate } from "../documents/update-structs.ts";
import { ParleyError } from "../platform/errors.ts";

/** The sender an update's message authorship and client ids must match. */
export interface UpdateAuthor {
  user: string;
  org: string;
}

/** Limits of a conversation document (PARLEY_MAX_DOC_DEPTH, PARLEY_MAX_DOC_ITEMS, PARLEY_MAX_DOC_BYTES). */
export interface DocumentLimits {
  /** Deepest nesting of shared types and plain values below a root type (a root's child: 1). */
  maxDepth: number;
  /** Most clock units (items, characters, values, deleted ones included) a document may hold. */
  maxItems: number;
  /** Largest a document's stored state may grow (bytes, before compaction). */
  maxBytes: number;
}

/** What an update is checked against besides itself. */
export interface ValidationContext {
  index: DocumentIndex;
  author: UpdateAuthor;
  limits: DocumentLimits;
  maxUpdateBytes: number;
  /** Bytes the conversation's state holds now (for `limits.maxBytes`). */
  documentBytes: number;
  /**
   * A restore built by the server: entries it may re-add in their original authors' names
   * (exactly as they were, keyed by JSON). Never set for an update that came from a client.
   */
  reAddable?: ReadonlySet<string>;
}

/** The codes an update refused by the document rules gets (a client must not resend it as is). */
export const REFUSED_UPDATE_CODES: ReadonlySet<number> = new Set([
  ErrorCode.InvalidUpdate,
  ErrorCode.UpdateTooLarge,
  ErrorCode.InvalidMessage,
  ErrorCode.ClientIdTaken,
  ErrorCode.DocumentLimit,
  ErrorCode.UnmergeableUpdate,
]);

/** What validation learned about an accepted update. */
export interface ValidatedUpdate {
  /** True when the update changes nothing (no new structs, no deletions): acked without storing. */
  empty: boolean;
  /** The bytes to store: the update itself, or it without what the document already has. */
  update: Uint8Array;
  /** Client ids the update uses that have no known owner yet: the sender claims them. */
  claims: number[];
  /** What the update adds to the index. */
  effects: IndexEffects;
}

const refuse = (message: string, code: ErrorCode = ErrorCode.InvalidUpdate) => new ParleyError(code, message);

/** Deepest nesting of a plain value (arrays and objects), iteratively: a value's depth never costs stack. */
function valueDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    const d = depth + 1;
    if (d > deepest) deepest = d;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d]);
  }
  return deepest;
}

function checkMessageEntry(value: unknown, ctx: ValidationContext): void {
  const isMessage = isConversationMessage(value);
  if (!isMessage && !isConversationRetraction(value)) {
    throw refuse("messages may only hold message and retraction entries, exactly their fields, within their size caps", ErrorCode.InvalidMessage);
  }
  if (value.authorUser === ctx.author.user && value.authorOrg === ctx.author.org) return;
  if (ctx.reAddable?.has(JSON.stringify(value))) return;
  throw refuse("a message in this update names another author", ErrorCode.InvalidMessage);
}

function checkStructs(read: ReadUpdate, ctx: ValidationContext): { claims: number[]; newUnits: number; overlapping: boolean } {
  const { index, author, limits } = ctx;
  const claims: number[] = [];
  let overlapping = false;
  // read.structs holds each client's structs together (see ReadUpdate.byClient): the clock the
  // next struct must start at is the previous struct's end while the client stays the same.
  let previousClient: number | undefined;
  let expected = 0;
  let known = 0;
  let newUnits = 0;
  if (read.skips.length > 0) throw refuse("the update has gaps in a client's clocks (it depends on changes it does not carry)", ErrorCode.UnmergeableUpdate);
  for (const { struct, parent } of read.structs) {
    const { client, clock } = struct.id;
    if (client !== previousClient) {
      previousClient = client;
      known = index.clockOf(client);
      if (clock > known) throw refuse(`the update continues client ${client} at clock ${clock}, but the document has it only up to ${known}`, ErrorCode.UnmergeableUpdate);
      const owner = index.ownerOf(client);
      if (owner && (owner.user !== author.user || owner.org !== author.org)) {
        throw refuse(`Yjs client id ${client} belongs to another writer in this conversation; use your own`, ErrorCode.ClientIdTaken);
      }
      if (!owner) claims.push(client);
    } else if (clock !== expected) {
      throw refuse("the update has gaps in a client's clocks", ErrorCode.UnmergeableUpdate);
    }
    const end = clock + struct.length;
    if (!Number.isSafeInteger(end) || struct.length <= 0) throw refuse("a struct has an impossible length", ErrorCode.UnmergeableUpdate);
    expected = end;
    if (clock < known) {
      overlapping = true;
      // Re-sent content is dropped before storing; what continues past it must continue in the
      // same parent, or readers that already have the start would put the rest elsewhere.
      if (end > known && struct instanceof Y.Item && index.parentAt(client, known - 1) !== parent) {
        throw refuse("the update rewrites content the document already has", ErrorCode.UnmergeableUpdate);
      }
    }
    if (end > known) newUnits += end - Math.max(clock, known);
    if (!(struct instanceof Y.Item)) continue;
    const content = struct.content;
    if (content instanceof Y.ContentDoc) throw refuse("sub-documents are not supported in a conversation");
    if (parent === MESSAGES_PARENT) {
      if (!(content instanceof Y.ContentAny) || struct.parentSub !== null) {
        throw refuse("messages may only hold plain entries appended to the list (no shared types, text, map keys or other content)", ErrorCode.InvalidMessage);
      }
      for (const value of content.arr) checkMessageEntry(value, ctx);
      continue;
    }
    if (parent === "") continue;
    // Everything else is free collaborative content, within the depth limit.
    const base = index.depthOf(parent) ?? 0;
    let depth = base;
    if (content instanceof Y.ContentType) depth = base + 1;
    else if (content instanceof Y.ContentAny || content instanceof Y.ContentJSON) {
      for (const value of content.arr) depth = Math.max(depth, base + valueDepth(value, limits.maxDepth));
    } else if (content instanceof Y.ContentEmbed) depth = base + valueDepth(content.embed, limits.maxDepth);
    else if (content instanceof Y.ContentFormat) depth = base + valueDepth(content.value, limits.maxDepth);
    if (depth > limits.maxDepth) throw refuse(`content nests ${depth} levels deep; the limit is ${limits.maxDepth}`, ErrorCode.DocumentLimit);
  }
  return { claims, newUnits, overlapping };
}

function checkLocalTypeDepths(read: ReadUpdate, limits: DocumentLimits): void {
  for (const { depth } of read.structs) {
    if (depth !== undefined && depth > limits.maxDepth) throw refuse(`shared types nest ${depth} levels deep; the limit is ${limits.maxDepth}`, ErrorCode.DocumentLimit);
  }
}

function checkDeletes(read: ReadUpdate, index: DocumentIndex): void {
  for (const [client, ranges] of read.ds.clients) {
    const end = Math.max(index.clockOf(client), clockEnd(read, client));
    for (const { clock, len } of ranges) {
      if (!(len > 0) || !Number.isSafeInteger(clock + len)) throw refuse("the delete set holds an empty range", ErrorCode.UnmergeableUpdate);
      if (clock + len > end) throw refuse("the update deletes content that does not exist", ErrorCode.UnmergeableUpdate);
      if (index.touchesMessages(client, clock, len) || touchesLocalMessages(read, client, clock, len)) {
        throw refuse("messages cannot be deleted or edited; append a retraction to take one back", ErrorCode.InvalidMessage);
      }
    }
  }
}

function touchesLocalMessages(read: ReadUpdate, client: number, clock: number, len: number): boolean {
  for (const { struct, parent } of read.structs) {
    if (parent !== MESSAGES_PARENT || struct.id.client !== client) continue;
    if (struct.id.clock < clock + len && clock < struct.id.clock + struct.length) return true;
  }
  return false;
}

/**
 * Checks `update` against the document rules. Throws {@link ParleyError} (UpdateTooLarge,
 * InvalidUpdate, InvalidMessage, ClientIdTaken, DocumentLimit, UnmergeableUpdate) and changes
 * nothing; on success the caller records `effects` in the index and claims `claims`.
 */
export function validateUpdate(update: Uint8Array, ctx: ValidationContext): ValidatedUpdate {
  if (update.length > ctx.maxUpdateBytes) {
    throw refuse(`update of ${update.length} bytes exceeds ${ctx.maxUpdateBytes}`, ErrorCode.UpdateTooLarge);
  }
  let read: ReadUpdate;
  try {
    read = readUpdate(update, ctx.index);
  } catch (error) {
    if (error instanceof UnresolvableUpdate) throw refuse(error.message, ErrorCode.UnmergeableUpdate);
    throw refuse("update could not be decoded");
  }
  const { claims, newUnits, overlapping } = checkStructs(read, ctx);
  checkLocalTypeDepths(read, ctx.limits);
  checkDeletes(read, ctx.index);
  if (read.structs.length === 0 && read.ds.clients.size === 0) return { empty: true, update, claims: [], effects: { runs: [], types: [] } };
  if (ctx.index.itemCount + newUnits > ctx.limits.maxItems) {
    throw refuse(`the document would hold more than ${ctx.limits.maxItems} items`, ErrorCode.DocumentLimit);
  }
  if (ctx.documentBytes + update.length > ctx.limits.maxBytes) {
    throw refuse(`the document would exceed ${ctx.limits.maxBytes} bytes`, ErrorCode.DocumentLimit);
  }
  // Stored in the layout every Yjs reader takes in full (one section per client, highest first),
  // without what the document already has, so re-sent content can never replace what is stored
  // when states merge. The bytes as sent are kept when they are that already (the fan-out then
  // reuses their envelope). Either way Yjs's own writer refuses what a client could not read.
  const asSent = !overlapping && read.canonicalLayout;
  let stored = update;
  try {
    if (asSent) checkEncodable(read);
    else stored = encodeCanonical(read, (client) => ctx.index.clockOf(client));
  } catch {
    throw refuse("the update does not merge cleanly", ErrorCode.UnmergeableUpdate);
  }
  const empty = overlapping && newUnits === 0 && read.ds.clients.size === 0;
  return { empty, update: empty ? update : stored, claims: newUnits === 0 ? [] : claims, effects: effectsOf(read) };
}
