// Replies still owed to conversation handles that were closed. After `leave` the server may still
// send frames meant for the old handle (doc frames and replies before its `left`, acks of writes
// committed just before the leave possibly after it); a handle reopened for the same conversation
// on the same socket must not take them for its own.

import type { ConversationControlMessage } from "./conversation-handle.ts";

/** What a closed handle is still owed: its `left`, and replies to its in-flight writes. */
export interface OwedReplies {
  left: boolean;
  writes: number;
}

/** Recognises frames that belong to closed handles, per conversation, on the current socket. */
export class StaleReplies {
  private readonly owed = new Map<string, OwedReplies>();

  /** A handle was closed with these replies still to come. */
  expect(conversation: string, replies: OwedReplies): void {
    if (!replies.left && replies.writes === 0) return;
    const current = this.owed.get(conversation);
    if (current === undefined) {
      this.owed.set(conversation, { ...replies });
      return;
    }
    // Closed twice before the first close's replies arrived: the owed counts add up.
    current.writes += replies.writes;
    current.left ||= replies.left;
  }

  /** True (and consumed) when a control message is owed to a closed handle. */
  claimControl(conversation: string, message: ConversationControlMessage): boolean {
    const owed = this.owed.get(conversation);
    if (owed === undefined) return false;
    let stale: boolean;
    if (message.type === "left" || (message.type === "error" && message.request === "leave")) {
      stale = owed.left;
      owed.left = false;
    } else if (message.type === "ack" || (message.type === "error" && message.request === "write")) {
      stale = owed.writes > 0;
      if (stale) owed.writes -= 1;
    } else {
      // joined, join errors and the like: before the old `left` they cannot be for the new handle.
      stale = owed.left;
    }
    if (!owed.left && owed.writes === 0) this.owed.delete(conversation);
    return stale;
  }

  /** True when a document frame for `conversation` predates the closed handle's `left`. */
  isStaleDoc(conversation: string): boolean {
    return this.owed.get(conversation)?.left === true;
  }

  /** The socket closed: nothing more will arrive for anyone. */
  clear(): void {
    this.owed.clear();
  }
}
