// Turns the current conversation document into a past one by editing it, so a restore is a new
// change on top of history. Yjs cannot undelete: a fresh document holding the past content merged
// into the current one would keep everything added since and bring nothing deleted back. Instead
// each root type of the schema is edited to match its past value, in one transaction, and the
// transaction's update is what gets committed.

import * as Y from "yjs";
import { type ConversationMessage, DocKeys, messagesOf, notesOf } from "../../protocol/index.ts";

/** What the past content looks like once rendered, for checking an edit and for responses. */
export interface RenderedConversation {
  items: ConversationMessage[];
  notes: string;
  meta: Record<string, unknown>;
}

/** Renders a document's schema types as plain data. */
export function renderConversation(doc: Y.Doc): RenderedConversation {
  return { items: messagesOf(doc).toArray(), notes: notesOf(doc).toString(), meta: doc.getMap<unknown>(DocKeys.meta).toJSON() };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Edits the message list to equal `past`: messages are immutable and never move in a Y.Array, so
 * the ones both lists share keep their order; the others are deleted or (re)inserted around them.
 */
function matchMessages(current: Y.Array<ConversationMessage>, past: ConversationMessage[]): void {
  const pastIds = new Set(past.map((message) => message.id));
  for (let index = current.length - 1; index >= 0; index--) {
    if (!pastIds.has(current.get(index).id)) current.delete(index, 1);
  }
  let index = 0;
  for (const message of past) {
    if (index < current.length && same(current.get(index), message)) {
      index++;
      continue;
    }
    current.insert(index, [{ ...message }]);
    index++;
  }
  if (index < current.length) current.delete(index, current.length - index);
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
    if (!same(now instanceof Y.AbstractType ? now.toJSON() : now, value)) current.set(key, value);
  }
}

/**
 * Edits `current` in one transaction so its schema content equals `past`'s; returns the update
 * that does it, or null when they already match.
 */
export function restoreEdit(current: Y.Doc, past: Y.Doc): Uint8Array | null {
  const target = renderConversation(past);
  const edit = (replaceMessages: boolean) => {
    let update: Uint8Array | null = null;
    const capture = (u: Uint8Array) => {
      update = update ? Y.mergeUpdates([update, u]) : u;
    };
    current.on("update", capture);
    current.transact(() => {
      const messages = messagesOf(current);
      if (replaceMessages) {
        messages.delete(0, messages.length);
        messages.insert(0, target.items.map((message) => ({ ...message })));
      } else {
        matchMessages(messages, target.items);
      }
      matchNotes(notesOf(current), notesOf(past));
      matchMeta(current.getMap<unknown>(DocKeys.meta), target.meta);
    });
    current.off("update", capture);
    return update as Uint8Array | null;
  };
  const update = edit(false);
  // Messages that moved or repeat an id (only a hand-made update can do that) defeat the ordered
  // match; replacing the whole list then is still correct, only larger.
  if (same(renderConversation(current).items, target.items)) return update;
  const fallback = edit(true);
  return update && fallback ? Y.mergeUpdates([update, fallback]) : (fallback ?? update);
}
