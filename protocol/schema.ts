// The conversation document: what a Parley conversation's Y.Doc holds and typed helpers to read
// and change it. The SDK and the server both go through these helpers, so the shape is defined
// once. The `messages` array is append-only: entries are plain objects (a message or a retraction
// of one) that the server checks field by field against the update's sender
// (server/writes/update-validator.ts); nothing in it is ever edited or deleted.

import type * as Y from "yjs";

/** One message in a conversation. Immutable once appended. */
export interface ConversationMessage {
  /** Unique id chosen by the author's client (e.g. a random UUID). */
  id: string;
  /** User id of the author; must equal the sender of the update that adds it. */
  authorUser: string;
  /** Organisation of the author; must equal the sender's organisation. */
  authorOrg: string;
  /** Message body (plain text). */
  text: string;
  /** Creation time, milliseconds since the epoch (the author's clock). */
  createdAt: number;
}

/**
 * Takes a message back: appended after it, naming it. The message stays in the document, its
 * history and the audit trail; readers show it as retracted. Only a retraction by the message's
 * own author counts (readers ignore others).
 */
export interface ConversationRetraction {
  /** Unique id of this entry. */
  id: string;
  /** User id of the retracting person; must equal the sender. */
  authorUser: string;
  /** Organisation of the retracting person; must equal the sender's organisation. */
  authorOrg: string;
  /** Id of the message taken back. */
  retracts: string;
  /** Time of the retraction, milliseconds since the epoch (the author's clock). */
  createdAt: number;
}

/** One entry of the `messages` array. */
export type ConversationEntry = ConversationMessage | ConversationRetraction;

/** A message as readers see it: with the retraction that took it back, when there is one. */
export interface ReadMessage extends ConversationMessage {
  /** Set when the author retracted the message: the retraction's id and time. */
  retracted?: { id: string; createdAt: number };
}

/** Lifecycle of a conversation (kept by the server's directory, never in the document). */
export type ConversationStatus = "open" | "closed";

/** Names of the document's root types: the schema's contract. */
export const DocKeys = { messages: "messages", notes: "notes", meta: "meta" } as const;

/** Size caps of message entries, enforced by the server on every update. */
export const MessageLimits = {
  /** Longest `id`, `retracts`, `authorUser` or `authorOrg` (UTF-16 code units). */
  maxIdLength: 200,
  /** Longest `text` (UTF-16 code units). */
  maxTextLength: 20_000,
} as const;

/** The conversation's entry list (messages and retractions). */
export function messagesOf(doc: Y.Doc): Y.Array<ConversationEntry> {
  return doc.getArray<ConversationEntry>(DocKeys.messages);
}

/** The shared free-text notes. */
export function notesOf(doc: Y.Doc): Y.Text {
  return doc.getText(DocKeys.notes);
}

/**
 * Reads every message, oldest first, with its author's retraction applied (retraction entries
 * themselves are not listed; anything that is neither a message nor a retraction is skipped).
 */
export function readMessages(doc: Y.Doc): ReadMessage[] {
  return applyRetractions(messagesOf(doc).toArray());
}

/** Messages of an entry list, each marked with its author's retraction. */
export function applyRetractions(entries: readonly unknown[]): ReadMessage[] {
  const messages: ReadMessage[] = [];
  const byId = new Map<string, ReadMessage>();
  for (const entry of entries) {
    if (isConversationMessage(entry)) {
      const message: ReadMessage = { ...entry };
      messages.push(message);
      if (!byId.has(message.id)) byId.set(message.id, message);
    } else if (isConversationRetraction(entry)) {
      const target = byId.get(entry.retracts);
      // Only the author takes a message back; the first retraction counts.
      if (target && !target.retracted && target.authorUser === entry.authorUser && target.authorOrg === entry.authorOrg) {
        target.retracted = { id: entry.id, createdAt: entry.createdAt };
      }
    }
  }
  return messages;
}

/** Appends a message (in one transaction). */
export function appendMessage(doc: Y.Doc, message: ConversationMessage): void {
  const { id, authorUser, authorOrg, text, createdAt } = message;
  messagesOf(doc).push([{ id, authorUser, authorOrg, text, createdAt }]);
}

/** Appends a retraction of one of the author's own messages (in one transaction). */
export function appendRetraction(doc: Y.Doc, retraction: ConversationRetraction): void {
  const { id, authorUser, authorOrg, retracts, createdAt } = retraction;
  messagesOf(doc).push([{ id, authorUser, authorOrg, retracts, createdAt }]);
}

const MESSAGE_KEYS = ["authorOrg", "authorUser", "createdAt", "id", "text"];
const RETRACTION_KEYS = ["authorOrg", "authorUser", "createdAt", "id", "retracts"];

function hasExactly(value: object, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  if (own.length !== keys.length) return false;
  for (const key of own) if (!keys.includes(key)) return false;
  return true;
}

const isId = (value: unknown): value is string => typeof value === "string" && value.length > 0 && value.length <= MessageLimits.maxIdLength;
const isTime = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value) && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null);

/** True when a value is exactly a {@link ConversationMessage}: its fields, typed and within the caps, nothing else. */
export function isConversationMessage(value: unknown): value is ConversationMessage {
  if (!isPlainObject(value) || !hasExactly(value, MESSAGE_KEYS)) return false;
  return (
    isId(value.id) &&
    isId(value.authorUser) &&
    isId(value.authorOrg) &&
    typeof value.text === "string" &&
    value.text.length <= MessageLimits.maxTextLength &&
    isTime(value.createdAt)
  );
}

/** True when a value is exactly a {@link ConversationRetraction}. */
export function isConversationRetraction(value: unknown): value is ConversationRetraction {
  if (!isPlainObject(value) || !hasExactly(value, RETRACTION_KEYS)) return false;
  return isId(value.id) && isId(value.authorUser) && isId(value.authorOrg) && isId(value.retracts) && isTime(value.createdAt);
}
