// The store's operations, synchronously, over one better-sqlite3 connection. Runs inside the
// store worker thread (never on the event loop); kept apart from the thread plumbing so the SQL
// and the chain-building can be read, and tested, on their own.

import Database from "better-sqlite3";
import * as Y from "yjs";
import type { KeyObject } from "node:crypto";
import {
  contentHmac,
  entryHash,
  genesisHash,
  importAuditKey,
  type ChainFields,
} from "../../log/audit-chain.ts";
import type { AppendRequest, CommittedAppend, CompactionResult, DocumentState, LogEntry } from "../store.ts";
import { migrate } from "./schema.ts";
import { StoreError } from "./store-error.ts";
import type { SqliteOps } from "./worker-protocol.ts";

/** The actor recorded on entries the server writes on its own (snapshots). */
export const SYSTEM_ACTOR = { user: "parley:system", org: "", session: "" } as const;

export interface SqliteLogOptions {
  path: string;
  auditKey: Uint8Array;
  /** 'full' syncs the WAL on every commit (durable across power loss); 'normal' only at checkpoints. */
  synchronous?: "full" | "normal";
  busyTimeoutMs?: number;
}

interface HeadRow {
  head_seq: number;
  head_hash: Uint8Array;
  head_at: number;
}

interface SnapshotRow {
  seq: number;
  covers: number;
  state: Uint8Array;
}

/** A conversation's chain head while a transaction extends it. */
interface Head {
  seq: number;
  hash: Uint8Array;
  at: number;
}

const ENTRY_COLUMNS = `
  e.conversation_id AS conversation, e.seq, e.at, e.user_id AS user, e.org_id AS org,
  e.session_id AS session, e.kind, e.size, e.content_hmac AS contentHmac,
  e.prev_hash AS prevHash, e.hash,
  CASE WHEN e.kind = 'snapshot' THEN s.state ELSE e.payload END AS payload`;

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

  constructor(
    private readonly db: Database.Database,
    auditKey: Uint8Array,
  ) {
    this.key = importAuditKey(auditKey);
    this.selectHead = db.prepare<[string], HeadRow>(
      "SELECT head_seq, head_hash, head_at FROM conversations WHERE id = ?",
    );
    this.upsertHead = db.prepare<[string, number, number, Uint8Array, number]>(
      `INSERT INTO conversations (id, created_at, head_seq, head_hash, head_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET head_seq = excluded.head_seq, head_hash = excluded.head_hash, head_at = excluded.head_at`,
    );
    this.insertEntry = db.prepare<
      [string, number, number, string, string, string, string, number, Uint8Array, Uint8Array, Uint8Array, Uint8Array | null]
    >(
      `INSERT INTO entries (conversation_id, seq, at, user_id, org_id, session_id, kind, size, content_hmac, prev_hash, hash, payload)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertSnapshot = db.prepare<[string, number, number, Uint8Array]>(
      "INSERT INTO snapshots (conversation_id, seq, covers, state) VALUES (?, ?, ?, ?)",
    );
    this.selectLatestSnapshot = db.prepare<[string], SnapshotRow>(
      "SELECT seq, covers, state FROM snapshots WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1",
    );
    this.selectUpdatesAfter = db.prepare<[string, number], { seq: number; payload: Uint8Array }>(
      "SELECT seq, payload FROM entries WHERE conversation_id = ? AND seq > ? AND kind = 'update' ORDER BY seq",
    );
    this.selectUpdatePayloadsAfter = db
      .prepare<[string, number], Uint8Array>(
        "SELECT payload FROM entries WHERE conversation_id = ? AND seq > ? AND kind = 'update' ORDER BY seq",
      )
      .pluck();
    this.selectEntries = db.prepare<[string, number, number], LogEntry>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e
       LEFT JOIN snapshots s ON s.conversation_id = e.conversation_id AND s.seq = e.seq
       WHERE e.conversation_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`,
    );
  }

  appendBatch(requests: readonly AppendRequest[]): CommittedAppend[] {
    if (!Array.isArray(requests)) throw new StoreError("invalid_request", "appendBatch expects an array");
    for (const r of requests) validateAppend(r);
    if (requests.length === 0) return [];
    // IMMEDIATE: take the write lock up front, so a second process can only make us wait
    // (busy_timeout), never fail a half-done batch on a lock upgrade.
    return this.db.transaction(() => this.appendAll(requests)).immediate();
  }

  private appendAll(requests: readonly AppendRequest[]): CommittedAppend[] {
    const now = Date.now();
    const heads = new Map<string, Head>();
    const committed: CommittedAppend[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const { conversation, actor, payload } = requests[i];
      let head = heads.get(conversation);
      if (!head) {
        head = this.readHead(conversation);
        heads.set(conversation, head);
      }
      const at = this.writeEntry(head, conversation, "update", actor, payload, payload, now);
      committed[i] = { conversation, seq: head.seq, at };
    }
    for (const [conversation, head] of heads) this.writeHead(conversation, head);
    return committed;
  }

  /** Appends one chained entry after `head` and advances `head` to it; returns its time. */
  private writeEntry(
    head: Head,
    conversation: string,
    kind: "update" | "snapshot",
    actor: { user: string; org: string; session: string },
    content: Uint8Array,
    storedPayload: Uint8Array | null,
    now: number,
  ): number {
    const seq = head.seq + 1;
    // Never earlier than the entry before: a clock step back must not make the chain lie.
    const at = Math.max(now, head.at);
    const fields: ChainFields = {
      conversation,
      seq,
      at,
      user: actor.user,
      org: actor.org,
      session: actor.session,
      kind,
      size: content.byteLength,
      contentHmac: contentHmac(this.key, content),
    };
    const hash = entryHash(head.hash, fields);
    this.insertEntry.run(
      conversation,
      seq,
      at,
      actor.user,
      actor.org,
      actor.session,
      kind,
      fields.size,
      fields.contentHmac,
      head.hash,
      hash,
      storedPayload,
    );
    head.seq = seq;
    head.hash = hash;
    head.at = at;
    return at;
  }

  private readHead(conversation: string): Head {
    const row = this.selectHead.get(conversation);
    if (!row) return { seq: 0, hash: genesisHash(conversation), at: 0 };
    return { seq: row.head_seq, hash: row.head_hash, at: row.head_at };
  }

  private writeHead(conversation: string, head: Head): void {
    // created_at only matters on insert; the upsert keeps the stored one for known conversations.
    this.upsertHead.run(conversation, head.at, head.seq, head.hash, head.at);
  }

  loadDocument(conversation: string): DocumentState {
    validateConversation(conversation);
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
    validateConversation(conversation);
    validateSeq(afterSeq);
    return this.selectUpdatesAfter.all(conversation, afterSeq);
  }

  readEntries(conversation: string, afterSeq: number, limit: number): LogEntry[] {
    validateConversation(conversation);
    validateSeq(afterSeq);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreError("invalid_request", "limit must be a positive integer");
    return this.selectEntries.all(conversation, afterSeq, limit);
  }

  compact(conversation: string): CompactionResult | null {
    validateConversation(conversation);
    return this.db.transaction((): CompactionResult | null => {
      const headRow = this.selectHead.get(conversation);
      if (!headRow) return null;
      const previous = this.selectLatestSnapshot.get(conversation);
      const updates = this.selectUpdatePayloadsAfter.all(conversation, previous?.covers ?? 0);
      if (updates.length === 0) return null;
      const state = Y.mergeUpdates(previous ? [previous.state, ...updates] : updates);
      const head: Head = { seq: headRow.head_seq, hash: headRow.head_hash, at: headRow.head_at };
      // The snapshot's own entry carries the merged state through the HMAC, so a tampered
      // snapshot breaks the chain like a tampered update does.
      this.writeEntry(head, conversation, "snapshot", SYSTEM_ACTOR, state, null, Date.now());
      const covers = head.seq - 1;
      this.insertSnapshot.run(conversation, head.seq, covers, state);
      this.writeHead(conversation, head);
      return { seq: head.seq, covers, size: state.byteLength };
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

function validateConversation(conversation: unknown): asserts conversation is string {
  if (typeof conversation !== "string" || conversation.length === 0) {
    throw new StoreError("invalid_request", "conversation must be a non-empty string");
  }
}

function validateSeq(seq: unknown): void {
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw new StoreError("invalid_request", "afterSeq must be a non-negative integer");
  }
}

function validateAppend(r: AppendRequest): void {
  validateConversation(r?.conversation);
  if (r.kind !== "update") throw new StoreError("invalid_request", `cannot append an entry of kind ${JSON.stringify(r.kind)}`);
  if (!(r.payload instanceof Uint8Array)) throw new StoreError("invalid_request", "payload must be a Uint8Array");
  const a = r.actor;
  if (!a || typeof a.user !== "string" || typeof a.org !== "string" || typeof a.session !== "string" || a.user === "") {
    throw new StoreError("invalid_request", "actor must name a user, an org and a session");
  }
}
