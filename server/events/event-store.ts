// The EventStore seam: where partner events are kept, one stream per organisation with its own
// monotonically increasing cursor. One implementation over SQL (./sql-event-store.ts) runs on a
// SQLite file in a worker thread (one node) or on the shared Postgres (several nodes); see
// server/webhooks/partner-storage.ts, which picks one.

import type { EventType } from "../../protocol/index.ts";

/** An event to record, addressed to the organisations that receive it. */
export interface NewEvent {
  /** Stable event id (`evt_…`), the same in every organisation's stream. */
  id: string;
  type: EventType;
  conversation: string;
  occurredAt: number;
  /** The type's payload (see protocol/events.ts), stored as JSON. */
  data: unknown;
  /** Organisations whose streams get this event (each at its own next cursor). */
  orgs: string[];
  /**
   * Record at most once per conversation and subject (e.g. `message:<id>`): a second append with
   * the same pair is skipped, whichever process or node makes it.
   */
  once?: string;
  /** For notes: skipped when the conversation's recorded notes hash is already this one. */
  notesHash?: string;
}

/** Where one recorded event landed. */
export interface AppendedEvent {
  id: string;
  cursors: { org: string; cursor: number }[];
}

/** One event of an organisation's stream, its JSON already built (sent as-is over SSE and webhooks). */
export interface StoredEvent {
  cursor: number;
  id: string;
  type: EventType;
  /** The full event as JSON: `{ id, cursor, type, occurredAt, conversation, data }`. */
  json: string;
}

/** A read of an organisation's stream after a cursor. */
export type EventRead =
  /** `events` follow `after` in order (at most `limit`); `head` is the stream's latest cursor. */
  | { status: "ok"; events: StoredEvent[]; head: number }
  /** Events after `after` were removed by retention (`prunedThrough` is the last one removed). */
  | { status: "expired"; prunedThrough: number; head: number }
  /** `after` is beyond the stream's head: not a cursor this stream ever issued. */
  | { status: "ahead"; head: number };

/** What the document-event deriver remembers about a conversation. */
export interface DerivationState {
  /** `once` subjects already recorded for the conversation (message ids as `message:<id>`). */
  subjects: string[];
  /** Hash of the notes text last reported (null: none yet). */
  notesHash: string | null;
}

/** The persistence contract for events, shared by every backend. */
export interface EventStore {
  /** Records events in one transaction, in order; returns those recorded (skips per `once`/`notesHash`). */
  append(events: readonly NewEvent[], now: number): Promise<AppendedEvent[]>;
  /** Events of `org` with cursor > `after`, at most `limit`, optionally only some types. */
  read(org: string, after: number, limit: number, types?: readonly EventType[]): Promise<EventRead>;
  /** How many events of `org` (of `types`, as `read` filters them) have a cursor > `after`. */
  countAfter(org: string, after: number, types?: readonly EventType[]): Promise<number>;
  /** The latest cursor of `org`'s stream (0 when it has none). */
  head(org: string): Promise<number>;
  /** Removes events recorded before `cutoff` (ms); returns how many stream entries went. */
  prune(cutoff: number): Promise<number>;
  /** Removes every event of a destroyed conversation from every stream; returns how many events went. */
  forgetConversation(conversation: string): Promise<number>;
  /**
   * An organisation deleted its side of a conversation: the conversation's events leave that
   * organisation's stream (events no stream refers to any more go too); returns how many entries went.
   */
  forgetConversationFor(org: string, conversation: string): Promise<number>;
  /** Ids of every event recorded about a conversation (to remove their copies elsewhere, e.g. webhook dead letters). */
  conversationEventIds(conversation: string): Promise<string[]>;
  /** Notes that a conversation has commits up to `seq` whose events are not derived yet. */
  markDirty(entries: readonly [conversation: string, seq: number][]): Promise<void>;
  /** Events of each conversation are derived up to its `seq` (one transaction): its dirty mark is cleared if not newer. */
  markDerived(entries: readonly [conversation: string, seq: number][]): Promise<void>;
  /** Conversations with commits not derived yet (dirty marks; older versions wrote them per commit). */
  listDirty(): Promise<{ conversation: string; seq: number }[]>;
  /** Every conversation's derivation watermark: its events are derived up to `seq`. */
  listDerived(): Promise<{ conversation: string; seq: number }[]>;
  derivationState(conversation: string): Promise<DerivationState>;
  close(): Promise<void>;
}

/** An event store over `api` (e.g. calls into a worker), closed by `close`. */
export function eventStoreOver(api: Omit<EventStore, "close">, close: () => Promise<void>): EventStore {
  return {
    append: (events, now) => api.append(events, now),
    read: (org, after, limit, types) => api.read(org, after, limit, types),
    countAfter: (org, after, types) => api.countAfter(org, after, types),
    head: (org) => api.head(org),
    prune: (cutoff) => api.prune(cutoff),
    forgetConversation: (conversation) => api.forgetConversation(conversation),
    forgetConversationFor: (org, conversation) => api.forgetConversationFor(org, conversation),
    conversationEventIds: (conversation) => api.conversationEventIds(conversation),
    markDirty: (entries) => api.markDirty(entries),
    markDerived: (entries) => api.markDerived(entries),
    listDirty: () => api.listDirty(),
    listDerived: () => api.listDerived(),
    derivationState: (conversation) => api.derivationState(conversation),
    close,
  };
}
