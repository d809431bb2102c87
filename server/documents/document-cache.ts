// Hot conversations' merged Yjs state, kept as bytes (no Y.Doc) within a memory budget. Committed
// updates are appended cheaply and merged lazily, only when a joining client needs a diff. The
// least recently used conversations are evicted first and reloaded from the store on demand.

import * as Y from "yjs";
import { clientOwnersFromLog, RESTORE_SESSION } from "./client-owners.ts";
import { DocumentIndex } from "./document-index.ts";
import { effectsOf, readUpdate } from "./update-structs.ts";
import type { Store } from "../store/store.ts";

/** The cached state of one conversation. */
export class CachedDocument {
  private base: Uint8Array;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** The merged state's state vector, derived once per change (joins of a big document ask often). */
  private vector: Uint8Array | null = null;
  /** Values derived from the current state (e.g. encoded full-state frames), dropped on change. */
  private readonly derived = new Map<string, unknown>();
  /** The document rules' index (null until a write needs it, or after it could not follow). */
  index: DocumentIndex | null = null;
  /** The index being built, or its owners being brought up to date. */
  indexing: Promise<DocumentIndex> | null = null;
  /** The head the recorded client-id owners were last read at. */
  ownersAt = -1;
  /** The log was read once for owners recorded before the store kept them. */
  logScanned = false;
  /** When it was last moved to the recent end of the cache's LRU order (the cache's use count). */
  usedAt = 0;

  constructor(
    readonly conversation: string,
    base: Uint8Array,
    /** Last committed sequence number this state includes. */
    public headSeq: number,
    /** Updates after the latest snapshot, to decide when to compact. */
    public updatesSinceSnapshot: number,
    /** Their bytes: a compaction costs about the whole state, so it waits for a share of it. */
    public bytesSinceSnapshot = 0,
  ) {
    this.base = base;
  }

  /** Approximate memory held, in bytes. */
  get bytes(): number {
    return this.base.length + this.pendingBytes;
  }

  /**
   * Adds a committed update. Duplicates are harmless: Yjs merging is idempotent. `recordedIn`: the
   * index the write path's validation already recorded it in (this node's own commits).
   */
  add(update: Uint8Array, seq: number, recordedIn?: object): void {
    this.follow(update, recordedIn);
    this.pending.push(update);
    this.pendingBytes += update.length;
    this.vector = null;
    this.derived.clear();
    if (seq > this.headSeq) this.headSeq = seq;
    this.updatesSinceSnapshot++;
    this.bytesSinceSnapshot += update.length;
    // Bound the pending list so a room nobody joins does not grow an unmerged tail forever. A merge
    // costs about the whole state: it waits until the tail is a share of it (amortised linear;
    // merging a large document every 1000 small updates made the cost grow with its size).
    const due = this.pendingBytes * MERGE_TAIL_SHARE >= this.base.length || this.pending.length >= MERGE_MAX_PENDING;
    if (this.pending.length >= MERGE_AFTER_UPDATES && due) this.state();
  }

  /** Keeps the index up to date with a committed update this node did not validate (another node's). */
  private follow(update: Uint8Array, recordedIn: object | undefined): void {
    const index = this.index;
    if (!index || recordedIn === index) return;
    try {
      index.record(effectsOf(readUpdate(update, index, { tolerant: true })));
    } catch {
      // Rebuilt from the merged state when next needed.
      this.index = null;
    }
  }

  /** The merged state as one update. */
  state(): Uint8Array {
    if (this.pending.length > 0) {
      this.base = Y.mergeUpdates([this.base, ...this.pending]);
      this.pending = [];
      this.pendingBytes = 0;
    }
    return this.base;
  }

  /** What a client with this state vector lacks. */
  diff(stateVector: Uint8Array): Uint8Array {
    // A new client (empty state vector: a zero count) lacks everything: the merged state as it
    // is, without decoding and re-encoding a possibly large document once per joiner.
    if (stateVector.length === 1 && stateVector[0] === 0) return this.state();
    return Y.diffUpdate(this.state(), stateVector);
  }

  /** True when `update` is the merged state itself (what {@link diff} gives a new client). */
  isFullState(update: Uint8Array): boolean {
    return update === this.base && this.pending.length === 0;
  }

  /**
   * A value derived from the current state, computed once until the state changes: many
   * clients joining a large document get the same full-state frame, encoded once.
   */
  memo<T>(key: string, compute: () => T): T {
    if (!this.derived.has(key)) this.derived.set(key, compute());
    return this.derived.get(key) as T;
  }

  /** The state vector of the merged state (sent as the server's sync step 1). */
  stateVector(): Uint8Array {
    this.vector ??= Y.encodeStateVectorFromUpdate(this.state());
    return this.vector;
  }
}

const EMPTY_UPDATE = new Uint8Array([0, 0]);
/** Fewest pending updates before a merge on add() (joins merge whatever is pending anyway). */
const MERGE_AFTER_UPDATES = 1000;
/** ...and the pending tail must be at least 1/MERGE_TAIL_SHARE of the merged state's bytes. */
const MERGE_TAIL_SHARE = 4;
/** ...or this many are pending (each small array costs more memory than its bytes). */
const MERGE_MAX_PENDING = 16_000;

/**
 * True when the document's index can be used as it is. Another node's commits reach the index
 * through add() without their writers: those are read again from the store when a client id
 * without an owner shows up.
 */
function indexReady(doc: CachedDocument): doc is CachedDocument & { index: DocumentIndex } {
  return doc.index !== null && (doc.ownersAt >= doc.headSeq || !doc.index.hasUnownedClients());
}

/** LRU cache of {@link CachedDocument}s loaded from the store. */
export class DocumentCache {
  private readonly docs = new Map<string, CachedDocument>();
  private readonly loading = new Map<string, { promise: Promise<CachedDocument>; backlog: [Uint8Array, number][] }>();
  private totalBytes = 0;
  /** Calls of get() so far: the clock of the approximate LRU order. */
  private uses = 0;

  constructor(
    private readonly store: Store,
    private readonly budgetBytes: number,
  ) {}

  /** The conversation's cached state, loading it from the store if needed. */
  get(conversation: string): Promise<CachedDocument> {
    const doc = this.docs.get(conversation);
    if (doc) {
      this.touch(conversation, doc);
      return Promise.resolve(doc);
    }
    const inProgress = this.loading.get(conversation);
    if (inProgress) return inProgress.promise;
    const entry = { promise: this.load(conversation), backlog: [] as [Uint8Array, number][] };
    this.loading.set(conversation, entry);
    return entry.promise;
  }

  /**
   * The conversation's cached state with its document-rules index, built from the merged state
   * and the store's client-id owners on first use.
   */
  async withIndex(conversation: string): Promise<{ doc: CachedDocument; index: DocumentIndex }> {
    const doc = await this.get(conversation);
    if (indexReady(doc)) return { doc, index: doc.index };
    doc.indexing ??= this.buildIndex(conversation, doc).finally(() => {
      doc.indexing = null;
    });
    return { doc, index: await doc.indexing };
  }

  /**
   * What {@link withIndex} gives, without waiting, when the state is cached and its index ready
   * (the common case of a write); undefined when it has to be loaded or built first.
   */
  withIndexNow(conversation: string): { doc: CachedDocument; index: DocumentIndex } | undefined {
    const doc = this.docs.get(conversation);
    if (!doc || !indexReady(doc)) return undefined;
    this.touch(conversation, doc);
    return { doc, index: doc.index };
  }

  private async buildIndex(conversation: string, doc: CachedDocument): Promise<DocumentIndex> {
    // Owners first, then the state: a commit landing in between is in the state and in add(),
    // and its owner is read on the next call (headSeq has moved past ownersAt).
    const ownersAt = doc.headSeq;
    const recorded = await this.store.listClientIds(conversation);
    let index = doc.index;
    if (!index) {
      // Built from the state in one turn, so every later commit reaches the index through add().
      index = new DocumentIndex();
      index.record(effectsOf(readUpdate(doc.state(), index, { tolerant: true })));
      doc.index = index;
    }
    for (const { client, user, org, session } of recorded) index.setOwner(client, { user, org, restore: session.startsWith(RESTORE_SESSION) });
    if (index.hasUnownedClients() && !doc.logScanned) {
      // Written before owners were recorded: the first writer of each id is in the log.
      doc.logScanned = true;
      const { owners } = await clientOwnersFromLog(this.store, conversation);
      for (const [client, owner] of owners) index.setOwner(client, owner);
    }
    doc.ownersAt = Math.max(doc.ownersAt, ownersAt);
    return index;
  }

  /** The cached state if present, without loading or touching it. */
  peek(conversation: string): CachedDocument | undefined {
    return this.docs.get(conversation);
  }

  /**
   * Records a committed update in the cached state (if cached or loading). `recordedIn`: the
   * document-rules index validation recorded it in, when this node validated it.
   */
  committed(conversation: string, update: Uint8Array, seq: number, recordedIn?: object): void {
    const doc = this.docs.get(conversation);
    if (doc) {
      const before = doc.bytes;
      doc.add(update, seq, recordedIn);
      this.totalBytes += doc.bytes - before;
      this.evictIfNeeded(conversation);
      return;
    }
    // A load in flight may have read the store before this commit: replay it after the load.
    this.loading.get(conversation)?.backlog.push([update, seq]);
  }

  /** Drops a conversation's cached state. */
  evict(conversation: string): void {
    const doc = this.docs.get(conversation);
    if (!doc) return;
    this.totalBytes -= doc.bytes;
    this.docs.delete(conversation);
  }

  /** Bytes currently held. */
  get size(): { conversations: number; bytes: number } {
    return { conversations: this.docs.size, bytes: this.totalBytes };
  }

  private async load(conversation: string): Promise<CachedDocument> {
    try {
      const loaded = await this.store.loadDocument(conversation);
      const parts = loaded.snapshot ? [loaded.snapshot, ...loaded.updates] : loaded.updates;
      const base = parts.length === 0 ? EMPTY_UPDATE : parts.length === 1 ? parts[0] : Y.mergeUpdates(parts);
      const tailBytes = loaded.updates.reduce((sum, update) => sum + update.length, 0);
      const doc = new CachedDocument(conversation, base, loaded.headSeq, loaded.updatesSinceSnapshot, tailBytes);
      for (const [update, seq] of this.loading.get(conversation)?.backlog ?? []) {
        if (seq > loaded.headSeq) doc.add(update, seq);
      }
      this.docs.set(conversation, doc);
      this.totalBytes += doc.bytes;
      this.evictIfNeeded(conversation);
      return doc;
    } finally {
      this.loading.delete(conversation);
    }
  }

  private touch(conversation: string, doc: CachedDocument): void {
    // Map iteration order is insertion order: re-inserting makes this the most recent. A document
    // used within the last half of the cache's uses is already far from the old end: it stays
    // where it is (re-inserting on every write was a Map delete and insert per update).
    this.uses++;
    if (this.uses - doc.usedAt < this.docs.size / 2) return;
    doc.usedAt = this.uses;
    this.docs.delete(conversation);
    this.docs.set(conversation, doc);
  }

  private evictIfNeeded(keep: string): void {
    if (this.totalBytes <= this.budgetBytes) return;
    for (const [id, doc] of this.docs) {
      if (this.totalBytes <= this.budgetBytes) break;
      if (id === keep) continue;
      this.totalBytes -= doc.bytes;
      this.docs.delete(id);
    }
  }
}
