// Awareness for one conversation on the wire: sends only this client's own state, applies peers'
// states, re-announces after a (re)join with a clock peers accept, and withdraws on leave — all
// without changing the app's own awareness state.

import { type Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from "y-protocols/awareness";

/** Sends an awareness update for the conversation; false when it could not be sent. */
export type SendAwareness = (update: Uint8Array) => boolean;

interface AwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

/** Binds an Awareness to a conversation's traffic while the conversation is joined. */
export class PresenceLink {
  private live = false;

  /** `origin` marks updates applied from the network, so they are not sent back. */
  readonly awareness: Awareness;
  private readonly send: SendAwareness;
  private readonly origin: object;

  constructor(awareness: Awareness, send: SendAwareness, origin: object) {
    this.awareness = awareness;
    this.send = send;
    this.origin = origin;
    awareness.on("update", this.onUpdate);
  }

  /** The conversation was joined: start sending, and announce this client's state. */
  joined(): void {
    // When a socket goes away the server announces its removal at our clock + 1, so re-sending at
    // clock + 1 would be ignored by peers: advance the clock once unsent, then once more to send.
    const state = this.awareness.getLocalState();
    if (state !== null) this.awareness.setLocalState(state);
    this.live = true;
    if (state !== null) this.awareness.setLocalState(state);
  }

  /** Applies a peer's awareness update; throws on undecodable input. */
  receive(update: Uint8Array): void {
    applyAwarenessUpdate(this.awareness, update, this.origin);
  }

  /** Tells peers this client is gone, at the current clock (y-protocols accepts a null state there). */
  withdraw(): void {
    if (!this.live) return;
    this.send(encodeAwarenessUpdate(this.awareness, [this.awareness.clientID], new Map()));
  }

  /** No longer joined: stop sending and forget peers (they re-announce after the next join). */
  detached(): void {
    this.live = false;
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.awareness.clientID);
    if (others.length > 0) removeAwarenessStates(this.awareness, others, this.origin);
  }

  /** Stops listening to the awareness for good. */
  dispose(): void {
    this.detached();
    this.awareness.off("update", this.onUpdate);
  }

  private readonly onUpdate = (changes: AwarenessChanges, origin: unknown): void => {
    if (origin === this.origin || !this.live) return;
    const own = this.awareness.clientID;
    if (!changes.added.includes(own) && !changes.updated.includes(own) && !changes.removed.includes(own)) return;
    this.send(encodeAwarenessUpdate(this.awareness, [own]));
  };
}
