// The write path: validate → append (seq + audit entry, group commit) → only then fan out and
// acknowledge. The invariant lives here: nothing reaches another client, another node or the
// cache until the store has made it durable and attributed.

import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import type { Logger } from "../platform/logger.ts";
import type { UWS } from "../platform/uws.ts";
import type { DocumentCache } from "../documents/document-cache.ts";
import type { Actor, Store } from "../store/store.ts";
import { StoreError } from "../sql/store-error.ts";
import type { GroupCommitter } from "./group-committer.ts";
import { type DocumentLimits, validateUpdate } from "./update-validator.ts";

/** The connection a commit came from, so the fan-out can leave it out of the broadcast. */
export interface CommitOrigin {
  /** Its wire dialect: only subscribers of the same dialect share its socket's topic. */
  readonly dialect: "parley" | "yjs";
  /** The open socket, or null once closed. */
  readonly socket: UWS.WebSocket<unknown> | null;
}

/** What this node knows of one of its own commits, for the fan-out. */
export interface LocalCommit {
  /** The sending connection (skipped by the fan-out). */
  origin?: CommitOrigin;
  /** The update already encoded as a Parley frame, when the caller has it. */
  envelope?: Uint8Array;
  /** The update already encoded as a bare y-websocket update message, when the caller has it. */
  bareFrame?: Uint8Array;
  /** The document-rules index validation recorded the update in (the cache need not read it again). */
  recordedIn?: object;
}

/** Where committed updates go: the cache and local subscribers (in sequence order), and other nodes. */
export interface FanOut {
  /**
   * Delivers a committed update, the cache included: with several nodes only the fan-out knows
   * the order to feed it in. `local` is set for this node's own commits.
   */
  committedUpdate(conversation: string, update: Uint8Array, seq: number, local?: LocalCommit): void;
}

/** How one submission arrived, for fan-out and ordering. */
export interface SubmitOptions {
  /** The sending connection, skipped by the fan-out. */
  origin?: CommitOrigin;
  /** The update already encoded as a Parley frame, published as-is. */
  envelope?: Uint8Array;
  /** The update already encoded as a bare y-websocket update message, published as-is. */
  bareFrame?: Uint8Array;
  /** The sender's previous write (it may reject): a no-op is acknowledged only after it settles, to keep acks in order. */
  previousWrite?: Promise<unknown>;
  /** Size limit for this update, when not the default (a client's catch-up after being offline). */
  maxBytes?: number;
  /**
   * The server built this update from the conversation's own past content (a restore): entries
   * (by JSON) it may re-add in their original authors' names. Never set for a client's update.
   */
  reAddable?: ReadonlySet<string>;
}

/** Dependencies of the write path, wired by the composition root. */
export interface WritePathDeps {
  store: Store;
  committer: GroupCommitter;
  cache: DocumentCache;
  fanOut: FanOut;
  logger: Logger;
  maxUpdateBytes: number;
  /** Bounds of every conversation document. */
  documentLimits: DocumentLimits;
  compactAfterUpdates: number;
  /** Told the seq a compaction's snapshot entry took (ordered delivery steps over it). */
  onCompacted?: (conversation: string, seq: number) => void;
}

const ignore = (): void => undefined;

/** A compaction's tail must be at least 1/COMPACT_TAIL_SHARE of the state's bytes... */
const COMPACT_TAIL_SHARE = 4;
/** ...unless it holds this many times the configured number of updates (bounds a load's row count). */
const COMPACT_TAIL_MAX_FACTOR = 16;

/**
 * A compaction re-reads, decrypts and merges the whole state: run it once the tail since the last
 * snapshot holds `compactAfterUpdates` updates and a share of the state's bytes, so its cost per
 * update stays flat as the document grows (at a fixed count it grew with the document: a third of
 * the store thread under the chatty load).
 */
export function compactionDue(doc: { updatesSinceSnapshot: number; bytesSinceSnapshot: number; bytes: number }, compactAfterUpdates: number): boolean {
  if (doc.updatesSinceSnapshot < compactAfterUpdates) return false;
  return doc.bytesSinceSnapshot * COMPACT_TAIL_SHARE >= doc.bytes || doc.updatesSinceSnapshot >= compactAfterUpdates * COMPACT_TAIL_MAX_FACTOR;
}

/** Accepts updates from any entry point (Parley sockets, y-websocket sockets, HTTP). */
export class WritePath {
  private readonly compacting = new Set<string>();

  constructor(private readonly deps: WritePathDeps) {}

  /**
   * Validates, commits and fans out one update; resolves with its sequence number once durable
   * (for an update that changes nothing: the conversation's current sequence number, nothing
   * stored). Throws {@link ParleyError} for invalid updates or when the store cannot commit.
   * `update` must not be mutated afterwards (it is kept in the cache and published).
   */
  async submit(conversation: string, update: Uint8Array, actor: Actor, options: SubmitOptions = {}): Promise<number> {
    const maxUpdateBytes = options.maxBytes ?? this.deps.maxUpdateBytes;
    if (update.length > maxUpdateBytes) throw new ParleyError(ErrorCode.UpdateTooLarge, `update of ${update.length} bytes exceeds ${maxUpdateBytes}`);
    let doc: Awaited<ReturnType<DocumentCache["withIndex"]>>["doc"];
    let index: Awaited<ReturnType<DocumentCache["withIndex"]>>["index"];
    try {
      // Without a wait when the conversation is cached: a write then costs no extra turn.
      ({ doc, index } = this.deps.cache.withIndexNow(conversation) ?? (await this.deps.cache.withIndex(conversation)));
    } catch (error) {
      this.deps.logger.error({ err: error, conversation }, "document could not be loaded for validation");
      throw new ParleyError(ErrorCode.StoreUnavailable, "the conversation could not be loaded; retry");
    }
    const limits = this.deps.documentLimits;
    // The size limit is checked against the merged state, not an unmerged tail of updates.
    if (doc.bytes + update.length > limits.maxBytes) doc.state();
    // From here to recording the result, nothing awaits: validations of one conversation run one
    // after another against an index that already holds every update accepted before.
    const verdict = validateUpdate(update, { index, author: actor, limits, maxUpdateBytes, documentBytes: doc.bytes, reAddable: options.reAddable });
    if (verdict.empty) {
      await options.previousWrite?.then(ignore, ignore); // its outcome is its own sender's concern
      return doc.headSeq;
    }
    // Recorded before the commit, so the sender's next update may build on this one at once.
    index.record(verdict.effects);
    for (const client of verdict.claims) index.setOwner(client, { ...actor, restore: options.reAddable !== undefined });
    const payload = verdict.update;
    let seq: number;
    let refused: string | undefined;
    try {
      // Client ids new to this node are claimed in the append's own transaction: with several
      // nodes, the store decides who was first.
      const claims = verdict.claims.length > 0 ? verdict.claims : undefined;
      ({ seq, refused } = await this.deps.committer.append({ conversation, kind: "update", actor, payload, claims }));
    } catch (error) {
      // The index holds what never committed: rebuild it (and the state) from the store.
      this.deps.cache.evict(conversation);
      // A request the store refused for what it is (a destroyed conversation) fails for good;
      // anything else is the store's trouble, and the client retries after reconnecting.
      if (error instanceof StoreError && error.code === "invalid_request") {
        this.deps.logger.info({ err: error, conversation }, "append refused by the store");
        throw new ParleyError(ErrorCode.InvalidRequest, "the update was refused: the conversation cannot be written");
      }
      this.deps.logger.error({ err: error, conversation }, "commit failed");
      throw new ParleyError(ErrorCode.StoreUnavailable, "the update could not be stored; retry");
    }
    if (refused) {
      // Another node's writer claimed one of these client ids first: nothing was stored.
      this.deps.cache.evict(conversation);
      throw new ParleyError(ErrorCode.ClientIdTaken, "a Yjs client id in this update belongs to another writer in this conversation; use your own");
    }
    // The frames carry the bytes as sent; when validation trimmed them, they are re-encoded.
    const asSent = payload === update;
    this.deps.fanOut.committedUpdate(conversation, payload, seq, {
      origin: options.origin,
      envelope: asSent ? options.envelope : undefined,
      bareFrame: asSent ? options.bareFrame : undefined,
      recordedIn: index,
    });
    this.maybeCompact(conversation);
    return seq;
  }

  /**
   * Compactions running now. One starts, when due, before the write that made it due is
   * acknowledged: once every write is acknowledged and this is 0, no snapshot entry is on its way.
   */
  compactionsInFlight(): number {
    return this.compacting.size;
  }

  private maybeCompact(conversation: string): void {
    const doc = this.deps.cache.peek(conversation);
    if (!doc || !compactionDue(doc, this.deps.compactAfterUpdates) || this.compacting.has(conversation)) return;
    this.compacting.add(conversation);
    const before = doc.updatesSinceSnapshot;
    const beforeBytes = doc.bytesSinceSnapshot;
    this.deps.store
      .compact(conversation)
      .then((result) => {
        doc.updatesSinceSnapshot = Math.max(0, doc.updatesSinceSnapshot - before);
        doc.bytesSinceSnapshot = Math.max(0, doc.bytesSinceSnapshot - beforeBytes);
        if (result) {
          this.deps.onCompacted?.(conversation, result.seq);
          this.deps.logger.debug({ conversation, ...result }, "compacted");
        }
      })
      .catch((error: unknown) => this.deps.logger.warn({ err: error, conversation }, "compaction failed"))
      .finally(() => this.compacting.delete(conversation));
  }
}
