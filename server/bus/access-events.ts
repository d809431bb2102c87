// Changes to who may access what, announced the moment they are committed so the realtime side
// can act on them at once: sockets of a signed-out session close, a removed participant leaves
// the conversation. Nothing cached in a connection outlives one of these.

/** Something that may take access away (or change a role). */
export type AccessChange =
  /** A sign-in session (refresh-token family) was revoked: logout, or a reused refresh token. */
  | { kind: "session-revoked"; family: string; userId: string }
  /** Every session of a person was revoked. */
  | { kind: "user-revoked"; userId: string }
  /** A person's membership in an organisation ended or changed. */
  | { kind: "membership-changed"; orgId: string; userId: string }
  /** Who may access a conversation changed (participants, people, invitations, status). */
  | { kind: "conversation-access-changed"; conversationId: string };

type Listener = (change: AccessChange) => void;

/** A tiny synchronous event channel for access changes. */
export class AccessEvents {
  private readonly listeners = new Set<Listener>();

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: AccessChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
