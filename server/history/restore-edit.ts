// Turns the current conversation document back towards a past one by editing it, so a restore is
// a new change on top of history. Yjs cannot undelete: a fresh document holding the past content
// merged into the current one would bring nothing deleted back. Instead the notes and meta are
// edited to match their past values and past message entries missing now are re-added, in one
// transaction, whose update is committed through the same document rules as a client's. The
// message list is append-only: a restore never removes or changes an entry, anybody's.

import * as Y from "yjs";
import {
  type ConversationEntry,
  DocKeys,
  isConversationMessage,
  isConversationRetraction,
  messagesOf,
  notesOf,
  type ReadMessage,
  readMessages,
} from "../../protocol/index.ts";
import type { ClientOwner } from "../documents/document-index.ts";
import { toPlainContent } from "../platform/bounded-content.ts";

/** What the past content looks like once rendered, for checking an edit and for responses. */
export interface RenderedConversation {
  items: ReadMessage[];
  notes: string;
  meta: Record<string, unknown>;
}

/**
 * Renders a document's schema types as plain data, within the read limits (bounded-content.ts):
 * content nested too deep is a ContentTooComplex error for this request, never a stack overflow.
 */
export function renderConversation(doc: Y.Doc): RenderedConversation {
  return { items: readMessages(doc), notes: notesOf(doc).toString(), meta: toPlainContent(doc.getMap<unknown>(DocKeys.meta)) as Record<string, unknown> };
}

/** Equal as plain data; a value too complex to compare counts as different (so it is replaced). */
function same(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(toPlainContent(a)) === JSON.stringify(toPlainContent(b));
  } catch {
    return false;
  }
}

/** An entry's identity for comparing lists and for the validator's re-add allowance. */
export const entryKey = (entry: unknown): string => JSON.stringify(entry);

/**
 * Brings back past entries the list no longer has (lost before the message list became
 * append-only), each after the past entry it followed, when that one is still there. Never deletes
 * or moves anything: a restore cannot take back anybody's message. Returns the keys of the entries
 * it re-added, which the validator lets through in their original authors' names.
 */
function reAddMessages(current: Y.Array<ConversationEntry>, past: readonly ConversationEntry[]): Set<string> {
  const present = new Set(current.toArray().map(entryKey));
  const reAdded = new Set<string>();
  let previous: string | null = null;
  for (const entry of past) {
    const key = entryKey(entry);
    if (!present.has(key)) {
      const after = previous === null ? -1 : current.toArray().map(entryKey).indexOf(previous);
      current.insert(previous === null ? 0 : after >= 0 ? after + 1 : current.length, [{ ...entry }]);
      present.add(key);
      reAdded.add(key);
    }
    previous = key;
  }
  return reAdded;
}

/** Edits the notes to equal `past`: only the span between the common prefix and suffix changes. */
function matchNotes(current: Y.Text, past: Y.Text): void {
  const from = current.toString();
  const to = past.toString();
  const formatted = (delta: { insert?: unknown; attributes?: unknown }[]) => delta.some((op) => op.attributes || typeof op.insert !== "string");
  if (formatted(current.toDelta()) || formatted(past.toDelta())) {
    if (same(current.toDelta(), past.toDelta())) return;
    // Formatting or embeds: rewrite the whole text with the past delta rather than guess.
    current.delete(0, current.length);
    current.applyDelta(past.toDelta());
    return;
  }
  let prefix = 0;
  while (prefix < from.length && prefix < to.length && from[prefix] === to[prefix]) prefix++;
  let suffix = 0;
  while (suffix < from.length - prefix && suffix < to.length - prefix && from[from.length - 1 - suffix] === to[to.length - 1 - suffix]) suffix++;
  if (from.length - prefix - suffix > 0) current.delete(prefix, from.length - prefix - suffix);
  if (to.length - prefix - suffix > 0) current.insert(prefix, to.slice(prefix, to.length - suffix));
}

/** Edits the meta map to equal `past` (plain values; nested shared types are copied as JSON). */
function matchMeta(current: Y.Map<unknown>, past: Record<string, unknown>): void {
  for (const key of [...current.keys()]) if (!(key in past)) current.delete(key);
  for (const [key, value] of Object.entries(past)) {
    const now = current.get(key);
    if (!same(now, value)) current.set(key, value);
  }
}

/** A restore's edit: the update that makes it, and the entries it re-adds in others' names. */
export interface RestoreEdit {
  update: Uint8Array;
  reAdded: Set<string>;
}

/**
 * Edits `current` in one transaction so its notes and meta equal `past`'s and every past entry
 * of the message list written by its own author is there again; returns the update that does it,
 * or null when nothing differs. `ownerOf` names the writer of each client id (from the log).
 */
export function restoreEdit(current: Y.Doc, past: Y.Doc, ownerOf: (client: number) => ClientOwner | undefined): RestoreEdit | null {
  const pastEntries = attributableEntries(past, ownerOf);
  let update: Uint8Array | null = null;
  const capture = (u: Uint8Array) => {
    update = update ? Y.mergeUpdates([update, u]) : u;
  };
  let reAdded = new Set<string>();
  current.on("update", capture);
  current.transact(() => {
    reAdded = reAddMessages(messagesOf(current), pastEntries);
    matchNotes(notesOf(current), notesOf(past));
    matchMeta(current.getMap<unknown>(DocKeys.meta), renderConversation(past).meta);
  });
  current.off("update", capture);
  return update ? { update, reAdded } : null;
}

/** The past list's entries that are well formed and name their own writer (others are never re-added). */
function attributableEntries(past: Y.Doc, ownerOf: (client: number) => ClientOwner | undefined): ConversationEntry[] {
  const entries: ConversationEntry[] = [];
  for (let item = messagesOf(past)._start; item !== null; item = item.right) {
    if (item.deleted || !(item.content instanceof Y.ContentAny)) continue;
    const owner = ownerOf(item.id.client);
    for (const value of item.content.arr) {
      if (!isConversationMessage(value) && !isConversationRetraction(value)) continue;
      if (owner && value.authorUser === owner.user && value.authorOrg === owner.org) entries.push(value);
    }
  }
  return entries;
}
