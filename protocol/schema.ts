// The conversation document: what a Parley conversation's Y.Doc holds and typed helpers to read
// and change it. The SDK and the server both go through these helpers, so the shape is defined
// once. Messages are immutable plain objects in a Y.Array; the server checks that any message an
// update adds is authored by the update's sender (see server/log/update-validator.ts).

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

/** Lifecycle of a conversation. */
export type ConversationStatus = "open" | "closed";

/** Names of the document's root types: the schema's contract. */
export const DocKeys = { messages: "messages", notes: "notes", meta: "meta" } as const;

/** The conversation's message list. */
export function messagesOf(doc: Y.Doc): Y.Array<ConversationMessage> {
  return doc.getArray<ConversationMessage>(DocKeys.messages);
}

/** The shared free-text notes. */
export function notesOf(doc: Y.Doc): Y.Text {
  return doc.getText(DocKeys.notes);
}

/** Reads every message, oldest first. */
export function readMessages(doc: Y.Doc): ConversationMessage[] {
  return messagesOf(doc).toArray();
}

/** Appends a message (in one transaction). */
export function appendMessage(doc: Y.Doc, message: ConversationMessage): void {
  messagesOf(doc).push([{ ...message }]);
}

/** Reads the conversation's status; a new document is open. */
export function readStatus(doc: Y.Doc): ConversationStatus {
  return doc.getMap<unknown>(DocKeys.meta).get("status") === "closed" ? "closed" : "open";
}

/** Sets the conversation's status. */
export function setStatus(doc: Y.Doc, status: ConversationStatus): void {
  doc.getMap<unknown>(DocKeys.meta).set("status", status);
}

/** True when a value has the shape of a {@link ConversationMessage}. */
export function isConversationMessage(value: unknown): value is ConversationMessage {
  if (value === null || typeof value !== "object") return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m.id === "string" &&
    typeof m.authorUser === "string" &&
    typeof m.authorOrg === "string" &&
    typeof m.text === "string" &&
    typeof m.createdAt === "number"
  );
}
