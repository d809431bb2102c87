// The store's operations, synchronously, over one better-sqlite3 connection. Runs inside the
// store worker thread (never on the event loop); the SQL and the chain planning are shared with
// the Postgres store (../queries.ts, ../append-plan.ts), this module only runs them in SQLite.

import type { KeyObject } from "node:crypto";
import Database from "better-sqlite3";
import * as Y from "yjs";
import { importAuditKey } from "../../log/audit-chain.ts";
import { type ConversationHead, conversationsOf, type PlannedEntry, planAppends, planSnapshot } from "../append-plan.ts";
import { DESTROY, ENTRY, type EntryValues, entryValues, HEAD, type HeadRow, headFromRow, SNAPSHOT, type SnapshotRow } from "../queries.ts";
import { checkAfterSeq, checkAppendBatch, checkConversation, checkLimit } from "../request-checks.ts";
import type { AppendRequest, CommittedAppend, CompactionResult, DocumentState, LogEntry } from "../store.ts";
import { destroyedError } from "../store-error.ts";
import { migrate } from "./migrate.ts";
import type { SqliteOps } from "./worker-protocol.ts";

export interface SqliteLogOptions {
  path: string;
  auditKey: Uint8Array;
  /** 'full' syncs the WAL on every commit (durable across power loss); 'normal' only at checkpoints. */
  synchronous?: "full" | "normal";
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) and migrates a store database with the durability settings. */
export function openSqliteLog(options: SqliteLogOptions): SqliteLog {
  const db = new Database(options.path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous === "normal" ? "NORMAL" : "FULL"}`);
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    migrate(db);
    return new SqliteLog(db, options.auditKey);
  } catch (err) {
    db.close();
    throw err;
  }
}

export class SqliteLog implements SqliteOps {
  private readonly key: KeyObject;
  private readonly selectHead;
  private readonly upsertHead;
  private readonly insertEntry;
  private readonly insertSnapshot;
  private readonly selectLatestSnapshot;
  private readonly selectUpdatesAfter;
  private readonly selectUpdatePayloadsAfter;
  private readonly selectEntries;
  private readonly destroy;

  constructor(
    private readonly db: Database.Database,
    auditKey: Uint8Array,
  ) {
    this.key = importAuditKey(auditKey);
    this.selectHead = db.prepare<[string], HeadRow>(HEAD.select);
    this.upsertHead = db.prepare<[string, number, number, Uint8Array, number]>(HEAD.upsert);
    this.insertEntry = db.prepare<EntryValues>(ENTRY.insert);
    this.insertSnapshot = db.prepare<[string, number, number, Uint8Array]>(SNAPSHOT.insert);
    this.selectLatestSnapshot = db.prepare<[string], SnapshotRow>(SNAPSHOT.selectLatest);
    this.selectUpdatesAfter = db.prepare<[string, number], { seq: number; payload: Uint8Array }>(ENTRY.selectUpdatesAfter);
    this.selectUpdatePayloadsAfter = db.prepare<[string, number], Uint8Array>(ENTRY.selectPayloadsAfter).pluck();
    this.selectEntries = db.prepare<[string, number, number], LogEntry>(ENTRY.selectPage);
    this.destroy = {
      deleteEntries: db.prepare<[string]>(DESTROY.deleteEntries),
      deleteSnapshots: db.prepare<[string]>(DESTROY.deleteSnapshots),
      deleteHead: db.prepare<[string]>(DESTROY.deleteHead),
      insertTombstone: db.prepare<[string, number]>(DESTROY.insertTombstone),
      selectTombstone: db.prepare<[string], string>(DESTROY.selectTombstone).pluck(),
    };
  }

  appendBatch(requests: readonly AppendRequest[]): CommittedAppend[] {
    checkAppendBatch(requests);
    if (requests.length === 0) return [];
    // IMMEDIATE: take the write lock up front, so a second process can only make us wait
    // (busy_timeout), never fail a half-done batch on a lock upgrade. The write lock is what
    // makes reading the heads and writing after them atomic here (Postgres locks head rows).
    return this.db.transaction(() => this.appendAll(requests)).immediate();
  }

  private appendAll(requests: readonly AppendRequest[]): CommittedAppend[] {
    const heads = new Map<string, ConversationHead>();
    for (const conversation of conversationsOf(requests)) {
      const row = this.selectHead.get(conversation);
      if (row) heads.set(conversation, headFromRow(row));
      // Only a conversation without a head can have been destroyed (destruction deletes the head).
      else if (this.destroy.selectTombstone.get(conversation) !== undefined) throw destroyedError(conversation);
    }
    const plan = planAppends(requests, heads, this.key, Date.now());
    this.writeEntries(plan.entries);
    for (const [conversation, head] of plan.heads) this.writeHead(conversation, head);
    return plan.committed;
  }

  private writeEntries(entries: readonly PlannedEntry[]): void {
    for (const entry of entries) this.insertEntry.run(...entryValues(entry));
  }

  private writeHead(conversation: string, head: ConversationHead): void {
    // created_at only matters on insert; the upsert keeps the stored one for known conversations.
    this.upsertHead.run(conversation, head.at, head.seq, head.hash, head.at);
  }

  loadDocument(conversation: string): DocumentState {
    checkConversation(conversation);
    // One read transaction so the snapshot, the updates and the head agree with each other.
    return this.db.transaction((): DocumentState => {
      const head = this.selectHead.get(conversation);
      if (!head) return { snapshot: null, snapshotCovers: 0, updates: [], updatesSinceSnapshot: 0, headSeq: 0 };
      const snapshot = this.selectLatestSnapshot.get(conversation);
      const covers = snapshot?.covers ?? 0;
      const updates = this.selectUpdatePayloadsAfter.all(conversation, covers);
      return {
        snapshot: snapshot?.state ?? null,
        snapshotCovers: covers,
        updates,
        updatesSinceSnapshot: updates.length,
        headSeq: head.head_seq,
      };
    })();
  }

  readUpdatesSince(conversation: string, afterSeq: number): { seq: number; payload: Uint8Array }[] {
    checkConversation(conversation);
    checkAfterSeq(afterSeq);
    return this.selectUpdatesAfter.all(conversation, afterSeq);
  }

  readEntries(conversation: string, afterSeq: number, limit: number): LogEntry[] {
    checkConversation(conversation);
    checkAfterSeq(afterSeq);
    checkLimit(limit);
    return this.selectEntries.all(conversation, afterSeq, limit);
  }

  compact(conversation: string): CompactionResult | null {
    checkConversation(conversation);
    return this.db.transaction((): CompactionResult | null => {
      const headRow = this.selectHead.get(conversation);
      if (!headRow) return null;
      const previous = this.selectLatestSnapshot.get(conversation);
      const updates = this.selectUpdatePayloadsAfter.all(conversation, previous?.covers ?? 0);
      if (updates.length === 0) return null;
      const state = Y.mergeUpdates(previous ? [previous.state, ...updates] : updates);
      const { entry, head } = planSnapshot(conversation, headFromRow(headRow), state, this.key, Date.now());
      const covers = entry.seq - 1;
      this.writeEntries([entry]);
      this.insertSnapshot.run(conversation, entry.seq, covers, state);
      this.writeHead(conversation, head);
      return { seq: entry.seq, covers, size: state.byteLength };
    }).immediate();
  }

  destroyConversation(conversation: string): boolean {
    checkConversation(conversation);
    return this.db.transaction((): boolean => {
      const existed = this.selectHead.get(conversation) !== undefined;
      const d = this.destroy;
      const removed = d.deleteEntries.run(conversation).changes + d.deleteSnapshots.run(conversation).changes;
      d.deleteHead.run(conversation);
      d.insertTombstone.run(conversation, Date.now());
      return existed || removed > 0;
    }).immediate();
  }

  ping(): boolean {
    // Taking (and releasing) the write lock is what "can commit right now" means.
    this.db.exec("BEGIN IMMEDIATE");
    this.db.exec("ROLLBACK");
    return true;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
