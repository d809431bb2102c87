// Partner events: what happened in the conversations an organisation takes part in, as typed
// plain data. The same JSON shape travels over the event stream (SSE and socket frames), the
// paging API and webhook bodies, so a partner system decodes one type whichever way it listens.

/** Every event type, in the order the README documents them. */
export const EVENT_TYPES = [
  "conversation.created",
  "conversation.closed",
  "conversation.reopened",
  "participant.added",
  "participant.removed",
  "invitation.sent",
  "invitation.opened",
  "invitation.accepted",
  "invitation.revoked",
  "message.created",
  "notes.changed",
  "security.notice",
] as const;
/**
 * Types delivered only to readers that ask for them by name (a `types` filter, a webhook endpoint
 * subscribed to them): security notices concern the organisation's accounts, not its conversations,
 * so a partner system following conversation events is not handed them unasked.
 */
export const OPT_IN_EVENT_TYPES: readonly string[] = ["security.notice"];
/** One event type name. */
export type EventType = (typeof EVENT_TYPES)[number];

/** True when `value` names an event type. */
export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

/** Who caused an event: a person (`id` = user id) or an API key (`id` = `key:<keyId>`), acting for `org`. */
export interface EventActor {
  id: string;
  org: string;
}

/** The payload of each event type. */
export interface EventData {
  "conversation.created": { title: string; externalRef: string | null; startedBy: string; actor: EventActor };
  "conversation.closed": { actor: EventActor };
  "conversation.reopened": { actor: EventActor };
  "participant.added": { organisation: string; role: "participant" | "observer"; actor: EventActor };
  "participant.removed": { organisation: string; actor: EventActor };
  "invitation.sent": { invitation: string; email: string; role: "participant" | "observer"; expiresAt: number; actor: EventActor };
  /** The invitation link was first opened (landing page or sign-in; mail scanners may cause it). */
  "invitation.opened": { invitation: string };
  "invitation.accepted": { invitation: string; user: string };
  "invitation.revoked": { invitation: string; actor: EventActor };
  /** A message appeared in the conversation document; `seq` is the log position it was seen at. */
  "message.created": {
    message: { id: string; authorUser: string; authorOrg: string; text: string; createdAt: number };
    seq: number;
  };
  /** The shared notes changed (debounced: one event after edits pause); `text` is capped. */
  "notes.changed": { text: string; length: number; truncated: boolean; seq: number };
  /**
   * Something an organisation's owners and admins must know about (also e-mailed to them); the
   * event's `conversation` is "". `notice` is the kind (README › Security notices).
   */
  "security.notice": {
    notice: string;
    /** What happened, in a sentence. */
    summary: string;
    /** What to do about it. */
    advice: string;
    /** When it happened, ms since the epoch. */
    at: number;
    /** Where it came from, when known. */
    from: { ip: string | null; userAgent: string | null };
    /** Who or what it concerns (a user, key or member id), or "". */
    subject: string;
  };
}

/** One event as an organisation receives it. */
export type ParleyEvent = {
  [T in EventType]: {
    /** Stable id of the event (the same for every organisation that receives it): deduplicate on it. */
    id: string;
    /** Position in the receiving organisation's stream: strictly increasing, resume after it. */
    cursor: number;
    type: T;
    /** When it happened, milliseconds since the epoch (UTC). */
    occurredAt: number;
    /** The conversation it is about. */
    conversation: string;
    data: EventData[T];
  };
}[EventType];

/** A shape check for events received from the network (type, cursor, ids; `data` is trusted as typed). */
export function isParleyEvent(value: unknown): value is ParleyEvent {
  if (value === null || typeof value !== "object") return false;
  const e = value as Record<string, unknown>;
  return (
    typeof e.id === "string" &&
    typeof e.cursor === "number" &&
    Number.isSafeInteger(e.cursor) &&
    isEventType(e.type) &&
    typeof e.occurredAt === "number" &&
    typeof e.conversation === "string" &&
    e.data !== null &&
    typeof e.data === "object"
  );
}
