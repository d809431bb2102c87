// Events hidden in conversation documents: a new entry in the `messages` array, a change to the
// notes. After a commit (never on the write path itself), a short debounce later, the
// conversation's merged state is materialised from the cache and compared with what was already
// reported. Commits cost no write of their own here: the log's sequence numbers say what exists,
// and a per-conversation watermark (derived up to seq N, written in batches) says what was
// derived, so a restart re-derives every conversation whose log head is past its watermark.
// Message events are keyed (conversation, message id) in the event store, so a restart, a
// repeated derivation or a second node never reports a message twice.

import { createHash } from "node:crypto";
import * as Y from "yjs";
import { notesOf } from "../../protocol/index.ts";
import { attributedMessages } from "../documents/attributed-messages.ts";
import type { FanOut } from "../writes/write-path.ts";
import type { Logger } from "../platform/logger.ts";
import type { DocumentCache } from "../documents/document-cache.ts";
import type { Store } from "../store/store.ts";
import type { EventRecorder } from "./event-recorder.ts";
import type { EventStore } from "./event-store.ts";
import { monotonicClock } from "../platform/clock.ts";

/** Longest notes text carried in a `notes.changed` event (characters). */
export const NOTES_TEXT_CAP = 20_000;
/** Conversations whose reported state is kept in memory (least recently derived dropped first). */
const REMEMBERED_CONVERSATIONS = 1000;
/** Wait before retrying a derivation that failed (store or directory unavailable). */
const RETRY_MS = 1000;
/**
 * Watermarks are written together at most this often: one bookkeeping write a second, not one
 * per derivation. Losing the latest ones (a crash) only means those conversations are derived
 * again after the restart, which reports nothing twice.
 */
const WATERMARK_FLUSH_MS = 1000;

/** Settings of {@link DocumentEvents}. */
export interface DocumentEventsOptions {
  /** Wait after a commit before deriving, so a burst of commits costs one derivation. */
  debounceMs: number;
  /** Notes must stay unchanged this long before `notes.changed` is reported. */
  notesQuietMs: number;
  /** ...but a notes change is reported at the latest this long after it was first seen. */
  notesMaxWaitMs: number;
}

interface Tracked {
  timer: NodeJS.Timeout | null;
  /** The running derivation. */
  running: Promise<void> | null;
  /** A commit arrived while deriving: derive again afterwards. */
  again: boolean;
  /** `once` subjects reported (null: not loaded from the store yet). */
  subjects: Set<string> | null;
  /** Hash of the notes last reported. */
  notesHash: string | null;
  /** A notes change waiting for quiet. */
  notes: { text: string; hash: string; seq: number; firstSeenAt: number; timer: NodeJS.Timeout } | null;
}

const hashText = (text: string) => createHash("sha256").update(text).digest("hex");
const EMPTY_NOTES_HASH = hashText("");

/** Derives message and notes events from committed document state. */
export class DocumentEvents {
  private readonly tracked = new Map<string, Tracked>();
  /** Watermarks not yet written (derived up to seq), flushed together. */
  private readonly watermarks = new Map<string, number>();
  private watermarkTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /**
   * Conversations destroyed while this node ran: a derivation already under way must not write
   * their watermark (or anything) back after the destruction removed it. Bounded; a destroyed
   * conversation gets no commits again (the store's tombstone refuses them).
   */
  private readonly destroyed = new Set<string>();

  constructor(
    private readonly deps: {
      cache: Pick<DocumentCache, "get" | "peek" | "withIndex">;
      store: EventStore;
      /** The log: its chain heads say which conversations have commits past their watermark. */
      log: Pick<Store, "listChainHeads">;
      recorder: EventRecorder;
      logger: Logger;
      options: DocumentEventsOptions;
    },
  ) {}

  /**
   * Derives what an earlier run left undone: every conversation whose log head is past its
   * watermark (and any dirty mark an older version of Parley left).
   */
  async start(): Promise<void> {
    const [heads, derived, dirty] = await Promise.all([this.deps.log.listChainHeads(0), this.deps.store.listDerived(), this.deps.store.listDirty()]);
    const watermark = new Map(derived.map((d) => [d.conversation, d.seq]));
    const behind = new Set(heads.filter((head) => head.seq > (watermark.get(head.conversation) ?? 0)).map((head) => head.conversation));
    for (const { conversation } of dirty) behind.add(conversation);
    for (const conversation of behind) this.schedule(conversation, 0);
    if (behind.size > 0) this.deps.logger.info({ conversations: behind.size }, "deriving events left from the previous run");
  }

  /** A commit of this node: derive the conversation's events soon. Cheap (no I/O); never throws. */
  committed(conversation: string, _seq: number): void {
    if (this.closed || this.destroyed.has(conversation)) return;
    this.schedule(conversation, this.deps.options.debounceMs);
  }

  /**
   * The conversation is being destroyed: drop what is pending for it, wait for a derivation under
   * way (so nothing it writes lands after the caller removes the events), and never write for it again.
   */
  async forget(conversation: string): Promise<void> {
    if (this.destroyed.size >= REMEMBERED_CONVERSATIONS) this.destroyed.clear();
    this.destroyed.add(conversation);
    const entry = this.tracked.get(conversation);
    if (entry?.timer) clearTimeout(entry.timer);
    if (entry?.notes) clearTimeout(entry.notes.timer);
    await entry?.running;
    this.tracked.delete(conversation);
    this.watermarks.delete(conversation);
  }

  /** Derives everything pending now (shutdown), notes included, and stops taking commits. */
  async flush(): Promise<void> {
    this.closed = true;
    for (const [conversation, entry] of this.tracked) {
      if (entry.timer) {
        clearTimeout(entry.timer);
        entry.timer = null;
        void this.derive(conversation, entry);
      }
    }
    await Promise.all([...this.tracked.values()].map((entry) => entry.running));
    await Promise.all([...this.tracked.entries()].map(([conversation, entry]) => this.reportNotes(conversation, entry)));
    await this.writeWatermarks();
  }

  private entry(conversation: string): Tracked {
    let entry = this.tracked.get(conversation);
    if (!entry) {
      entry = { timer: null, running: null, again: false, subjects: null, notesHash: null, notes: null };
      this.tracked.set(conversation, entry);
      this.forgetIdle();
    }
    return entry;
  }

  private schedule(conversation: string, delayMs: number): void {
    const entry = this.entry(conversation);
    if (entry.running) {
      entry.again = true;
      return;
    }
    if (entry.timer) return;
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.derive(conversation, entry);
    }, delayMs);
    entry.timer.unref();
  }

  /** The conversation's events are derived up to `seq`: its watermark moves there with the next flush. */
  private markDerived(conversation: string, seq: number): void {
    if (this.destroyed.has(conversation)) return;
    this.watermarks.set(conversation, Math.max(this.watermarks.get(conversation) ?? 0, seq));
    if (this.watermarkTimer || this.closed) return;
    this.watermarkTimer = setTimeout(() => void this.writeWatermarks(), WATERMARK_FLUSH_MS);
    this.watermarkTimer.unref();
  }

  private async writeWatermarks(): Promise<void> {
    if (this.watermarkTimer) clearTimeout(this.watermarkTimer);
    this.watermarkTimer = null;
    if (this.watermarks.size === 0) return;
    const entries = [...this.watermarks];
    this.watermarks.clear();
    try {
      // One call and one transaction for all of them: a call each crossed to the partner-storage
      // worker once per conversation every second, as much main-thread time as the commits' own.
      await this.deps.store.markDerived(entries);
    } catch (error) {
      // Only a restart needs the watermarks; one not written means a harmless second derivation.
      this.deps.logger.warn({ err: error }, "could not record event derivation watermarks");
    }
  }

  private derive(conversation: string, entry: Tracked): Promise<void> {
    entry.again = false;
    entry.running = this.deriveOnce(conversation, entry)
      .catch((error: unknown) => {
        this.deps.logger.warn({ err: error, conversation }, "event derivation failed; retrying");
        entry.again = true;
      })
      .finally(() => {
        entry.running = null;
        if (entry.again && !this.closed) this.schedule(conversation, RETRY_MS);
        else if (entry.again) entry.again = false;
      });
    return entry.running;
  }

  private async deriveOnce(conversation: string, entry: Tracked): Promise<void> {
    // Conversations outside the directory (development tokens) have nobody to tell: skip the work.
    const orgs = await this.deps.recorder.takingPart(conversation);
    if (orgs.length === 0) {
      const cachedSeq = this.deps.cache.peek(conversation)?.headSeq;
      if (cachedSeq !== undefined) this.markDerived(conversation, cachedSeq);
      return;
    }
    const { doc: cached, index } = await this.deps.cache.withIndex(conversation);
    const seq = cached.headSeq;
    const doc = new Y.Doc({ gc: false }); // see materialise() in bounded-content.ts
    try {
      Y.applyUpdate(doc, cached.state());
      if (entry.subjects === null) {
        const state = await this.deps.store.derivationState(conversation);
        entry.subjects = new Set(state.subjects);
        entry.notesHash = state.notesHash ?? EMPTY_NOTES_HASH;
      }
      const subjects = entry.subjects;
      // Authors from the log (the writer of each entry), never from the entries' own fields.
      const fresh = attributedMessages(doc, (client) => index.ownerOf(client)).filter((m) => !subjects.has(`message:${m.id}`));
      if (this.destroyed.has(conversation)) return;
      await this.deps.recorder.recordDerived(
        conversation,
        fresh.map((m) => ({
          type: "message.created" as const,
          once: `message:${m.id}`,
          data: { message: { id: m.id, authorUser: m.authorUser, authorOrg: m.authorOrg, text: m.text, createdAt: m.createdAt }, seq },
        })),
        orgs,
      );
      for (const m of fresh) subjects.add(`message:${m.id}`);
      this.noticeNotes(conversation, entry, notesOf(doc).toString(), seq);
      // With a notes change still waiting, the conversation stays dirty until it is reported.
      if (!entry.notes) this.markDerived(conversation, seq);
    } finally {
      doc.destroy();
    }
  }

  /** Debounces a notes change: reported once the notes stay unchanged for a while. */
  private noticeNotes(conversation: string, entry: Tracked, text: string, seq: number): void {
    const hash = hashText(text);
    // eslint-disable-next-line security/detect-possible-timing-attacks -- content hashes compared to detect a change, not a secret being guessed
    if (entry.notes?.hash === hash) return;
    const firstSeenAt = entry.notes?.firstSeenAt ?? monotonicClock();
    if (entry.notes) clearTimeout(entry.notes.timer);
    // eslint-disable-next-line security/detect-possible-timing-attacks -- as above: change detection
    if (hash === entry.notesHash) {
      entry.notes = null; // changed back before it was reported
      return;
    }
    const { notesQuietMs, notesMaxWaitMs } = this.deps.options;
    const delay = Math.max(0, Math.min(notesQuietMs, firstSeenAt + notesMaxWaitMs - monotonicClock()));
    const timer = setTimeout(() => void this.reportNotes(conversation, entry), delay);
    timer.unref();
    entry.notes = { text, hash, seq, firstSeenAt, timer };
  }

  private async reportNotes(conversation: string, entry: Tracked): Promise<void> {
    const notes = entry.notes;
    if (!notes) return;
    clearTimeout(notes.timer);
    entry.notes = null;
    const truncated = notes.text.length > NOTES_TEXT_CAP;
    try {
      await this.deps.recorder.recordDerived(conversation, [
        {
          type: "notes.changed",
          notesHash: notes.hash,
          data: { text: truncated ? notes.text.slice(0, NOTES_TEXT_CAP) : notes.text, length: notes.text.length, truncated, seq: notes.seq },
        },
      ]);
      entry.notesHash = notes.hash;
      if (!entry.notes) this.markDerived(conversation, notes.seq);
    } catch (error) {
      this.deps.logger.warn({ err: error, conversation }, "notes event not recorded; retrying");
      if (entry.notes || this.closed) return;
      const timer = setTimeout(() => void this.reportNotes(conversation, entry), RETRY_MS);
      timer.unref();
      entry.notes = { ...notes, timer };
    }
  }

  /** Keeps memory bounded: forgets the reported state of idle conversations (reloaded from the store when needed). */
  private forgetIdle(): void {
    if (this.tracked.size <= REMEMBERED_CONVERSATIONS) return;
    for (const [conversation, entry] of this.tracked) {
      if (this.tracked.size <= REMEMBERED_CONVERSATIONS) break;
      if (!entry.timer && !entry.running && !entry.notes) this.tracked.delete(conversation);
    }
  }
}

/** A fan-out that also tells `documents` about each of this node's commits (after the commit, off the ack path). */
export function withDocumentEvents(fanOut: FanOut, documents: Pick<DocumentEvents, "committed">): FanOut {
  return {
    committedUpdate(conversation, update, seq, local) {
      fanOut.committedUpdate(conversation, update, seq, local);
      documents.committed(conversation, seq);
    },
  };
}
