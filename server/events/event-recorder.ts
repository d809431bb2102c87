// Records partner events: works out which organisations receive one (those taking part in the
// conversation at that moment), stores it, then wakes their followers. The HTTP routes and the
// invitation service call `record`; the document-event deriver calls `recordDerived`.

import { randomUUID } from "node:crypto";
import type { EventActor, EventData, EventType } from "../../protocol/index.ts";
import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import type { RetentionDirectory } from "../directory/retention-directory.ts";
import { actorId, type Principal } from "../http/principal.ts";
import type { Logger } from "../platform/logger.ts";
import type { EventNotifier } from "./event-notifier.ts";
import type { EventStore, NewEvent } from "./event-store.ts";

/** Append requests written in one transaction at most. */
const MAX_GROUP = 256;
/**
 * How long the deriver's view of who takes part in a conversation is kept. Access changes drop
 * it at once (this node's, and other nodes' through the bus); the expiry is the safety net for a
 * change that reached this node by no event. Derivation asks on every commit burst, so without
 * it each burst cost two directory look-ups.
 */
const AUDIENCE_TTL_MS = 5000;
const AUDIENCE_CACHE_LIMIT = 10_000;

/** Who receives an event about a conversation. */
export type Audience =
  /** The starting organisation and every participant organisation whose side is not deleted (the default). */
  | "taking-part"
  /** Only the starting organisation (invitations: only it may see them). */
  | "starting-org";

/** Options of {@link EventRecorder.record}. */
export interface RecordOptions {
  audience?: Audience;
  /** Organisations that receive it too (e.g. a participant just removed). */
  alsoTo?: string[];
  /** At most once per conversation and subject (see NewEvent.once). */
  once?: string;
  notesHash?: string;
}

/** The event's actor as carried in payloads. */
export function eventActor(principal: Principal): EventActor {
  return { id: actorId(principal), org: principal.orgId };
}

/** A new event id. */
export function newEventId(): string {
  return `evt_${randomUUID().replaceAll("-", "")}`;
}

/** What the recorder asks the directory: who takes part in a conversation. */
export type AudienceDirectory = Pick<ConversationDirectory, "getConversation"> & Pick<RetentionDirectory, "listConversationParties">;

/** Dependencies of {@link EventRecorder}. */
export interface EventRecorderDeps {
  store: EventStore;
  notifier: EventNotifier;
  logger: Logger;
  now: () => number;
}

/** Turns what happened into stored, announced events. */
export class EventRecorder {
  private directory: AudienceDirectory | null = null;
  private readonly queue: { events: NewEvent[]; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private writing = false;
  /** takingPart answers by conversation, with when they were looked up. */
  private readonly audiences = new Map<string, { orgs: Promise<string[]>; at: number }>();

  constructor(private readonly deps: EventRecorderDeps) {}

  /**
   * Connects the directory (opened by identity, which itself records events through this
   * recorder): the composition root calls this once, before the server accepts requests.
   */
  useDirectory(directory: AudienceDirectory): void {
    this.directory = directory;
  }

  /**
   * Records one event about a conversation. Never throws: the change it describes has already
   * happened, so a failure is logged (as an error: a partner will miss this event) instead.
   */
  async record<T extends EventType>(type: T, conversation: string, data: EventData[T], options: RecordOptions = {}): Promise<void> {
    try {
      const orgs = await this.audience(conversation, options.audience ?? "taking-part");
      orgs.push(...(options.alsoTo ?? []));
      await this.append([
        { id: newEventId(), type, conversation, occurredAt: this.deps.now(), data, orgs, once: options.once, notesHash: options.notesHash },
      ]);
    } catch (error) {
      this.deps.logger.error({ err: error, type, conversation }, "event not recorded");
    }
  }

  /**
   * The organisations taking part in a conversation now (none: not a directory conversation),
   * looked up once per conversation and kept until its access changes (see AUDIENCE_TTL_MS).
   */
  async takingPart(conversation: string): Promise<string[]> {
    const now = this.deps.now();
    const cached = this.audiences.get(conversation);
    if (cached && now - cached.at < AUDIENCE_TTL_MS) return [...(await cached.orgs)];
    const orgs = this.audience(conversation, "taking-part");
    if (this.audiences.size >= AUDIENCE_CACHE_LIMIT) this.audiences.clear();
    const entry = { orgs, at: now };
    this.audiences.set(conversation, entry);
    orgs.catch(() => {
      if (this.audiences.get(conversation) === entry) this.audiences.delete(conversation);
    });
    return [...(await orgs)];
  }

  /** Who may access the conversation changed (here or on another node): look its audience up again. */
  forgetAudience(conversation: string): void {
    this.audiences.delete(conversation);
  }

  /**
   * Records events derived from a conversation's document for `orgs` (default: everyone taking
   * part now). Throws on failure (the deriver retries).
   */
  async recordDerived(
    conversation: string,
    events: { type: EventType; data: unknown; once?: string; notesHash?: string }[],
    orgs?: string[],
  ): Promise<void> {
    if (events.length === 0) return;
    orgs ??= await this.audience(conversation, "taking-part");
    const now = this.deps.now();
    await this.append(events.map((event) => ({ id: newEventId(), conversation, occurredAt: now, orgs, ...event })));
  }

  /**
   * Appends in order; appends requested while one is being written go together in the next
   * (one transaction, one fsync): under load, events are committed in groups, not one by one.
   */
  private append(events: NewEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (!this.writing) void this.writeQueued();
    });
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, MAX_GROUP);
      try {
        const appended = await this.deps.store.append(
          group.flatMap((request) => request.events),
          this.deps.now(),
        );
        const heads = new Map<string, number>();
        for (const event of appended) for (const { org, cursor } of event.cursors) heads.set(org, Math.max(heads.get(org) ?? 0, cursor));
        for (const [org, cursor] of heads) this.deps.notifier.published(org, cursor);
        for (const request of group) request.resolve();
      } catch (error) {
        for (const request of group) request.reject(error);
      }
    }
    this.writing = false;
  }

  /** Parties whose side is deleted receive nothing more about the conversation (their copies went with the side). */
  private async audience(conversationId: string, audience: Audience): Promise<string[]> {
    const directory = this.directory;
    if (!directory) throw new Error("event recorder used before the directory was connected");
    const parties = (await directory.listConversationParties(conversationId)).filter((p) => p.sideDeletedAt === null).map((p) => p.orgId);
    if (audience === "taking-part" || parties.length === 0) return parties;
    const conversation = await directory.getConversation(conversationId);
    return conversation && parties.includes(conversation.orgId) ? [conversation.orgId] : [];
  }
}
