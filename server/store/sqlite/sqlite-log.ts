// The store's operations, synchronously, over one better-sqlite3 connection (plus one to the keyring file). Runs inside the
// store worker thread (never on the event loop); the SQL and the chain planning are shared with
// the Postgres store (../queries.ts, ../append-plan.ts, ../envelope.ts), this module only runs them in SQLite.

import type { KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import * as Y from "yjs";
import type { MasterKeyring } from "../../crypto/master-key.ts";
import { EntryHasher } from "../entry-hasher.ts";
import { type ConversationHead, conversationsOf, type PlannedEntry, planAppends, planSnapshot } from "../append-plan.ts";
import { DataKeyring, missingDataKeyError, newDataKey, openEntries, openRecord, openUpdates, sealRecord, sealUpdates } from "../envelope.ts";
import { DATA_KEY, type DataKeyRow, KEYRING_FILE, KEYRING_SCHEMA } from "../keyring.ts";
import { CLIENT_ID, DESTROY, ENTRY, ENTRY_COLUMNS, type EntryValues, entryValues, setEntryValues, HEAD, type HeadRow, headFromRow, type LastActivityRow, SNAPSHOT, type SnapshotRow } from "../queries.ts";
import { STORE_SCHEMA } from "../schema.ts";
import { type ClientIdOwner, claimedIds, claimKey, decideClaims, withRefusals } from "../client-claims.ts";
import { checkAfterSeq, checkAppendBatch, checkConversation, checkLimit } from "../request-checks.ts";
import type { AppendRequest, ClientIdRecord, CommittedAppend, CompactionResult, ConversationChainHead, DocumentState, LogEntry } from "../store.ts";
import { destroyedError, StoreError } from "../../sql/store-error.ts";
import { migrate } from "../../sql/sqlite-migrate.ts";
import { packCommitted, unpackAppendBatch } from "./packed-batch.ts";

export interface SqliteLogOptions {
  path: string;
  auditKey: Uint8Array;
  /** Master keys wrapping the conversations' data keys (encryption at rest). */
  masterKeys: MasterKeyring;
  /** The wrapped data keys' own file (see ../keyring.ts). Default: keyring.db beside `path`. */
  keyringPath?: string;
  /** 'full' syncs the WAL on every commit (durable across power loss); 'normal' only at checkpoints. */
  synchronous?: "full" | "normal";
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) and migrates a store database with the durability settings. */
export function openSqliteLog(options: SqliteLogOptions): SqliteLog {
  const db = openDatabase(options.path, options);
  let keyringDb: Database.Database | null = null;
  try {
    migrate(db, STORE_SCHEMA);
    // The keyring always commits with synchronous = FULL: a data key must be durable before the
    // first record that uses it lands in the other file.
    const keyringPath = options.keyringPath ?? join(dirname(options.path), KEYRING_FILE);
    // Without its keyring, every stored conversation is unreadable: every join would answer
    // "retry" forever. Refuse to start instead, naming the file (a new one would hold no keys).
    if (!existsSync(keyringPath)) {
      const stored = (db.prepare("SELECT count(*) AS n FROM conversations").get() as { n: number }).n;
      if (stored > 0) {
        throw new StoreError(
          "unavailable",
          `${keyringPath} is missing but ${options.path} holds ${stored} conversation(s) whose data keys were in it: ` +
            "restore keyring.db (it is in every backup) before starting; a new keyring could not decrypt them",
        );
      }
    }
    keyringDb = openDatabase(keyringPath, { ...options, synchronous: "full" });
    migrate(keyringDb, KEYRING_SCHEMA);
    return new SqliteLog(db, keyringDb, options.auditKey, options.masterKeys);
  } catch (err) {
    keyringDb?.close();
    db.close();
    throw err;
  }
}

function openDatabase(file: string, options: Pick<SqliteLogOptions, "synchronous" | "busyTimeoutMs">): Database.Database {
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous === "normal" ? "NORMAL" : "FULL"}`);
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    // A destroyed conversation's rows, and above all its shredded data key (keyring.db), are
    // overwritten on delete: left in a free page, a wrapped key would still open with the master key.
    db.pragma("secure_delete = ON");
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Rows per multi-row insert: one statement step for many rows costs less than a step each (the
 * rest of a batch goes one row at a time).
 */
const INSERT_CHUNK = 32;

export class SqliteLog {
  private readonly hasher: EntryHasher;
  private readonly selectHead;
  private readonly upsertHead;
  private readonly insertEntry;
  private readonly insertEntries;
  private readonly chunkArgs: unknown[] = new Array(INSERT_CHUNK * ENTRY_COLUMNS.length);
  private readonly insertSnapshot;
  private readonly selectLatestSnapshot;
  private readonly selectUpdatesAfter;
  private readonly selectEntries;
  private readonly destroy;
  private readonly clientIds;
  private readonly keys: DataKeyring;
  private readonly dataKeys;

  constructor(
    private readonly db: Database.Database,
    private readonly keyringDb: Database.Database,
    auditKey: Uint8Array,
    masterKeys: MasterKeyring,
  ) {
    this.hasher = new EntryHasher(auditKey);
    this.keys = new DataKeyring(masterKeys);
    this.dataKeys = {
      select: keyringDb.prepare<[string], DataKeyRow>(DATA_KEY.select),
      insert: keyringDb.prepare<[string, string, Uint8Array, number]>(DATA_KEY.insert),
      delete: keyringDb.prepare<[string]>(DATA_KEY.delete),
    };
    // Refuse to start on a keyring some other master key wrapped, naming that key's id.
    this.keys.requireMasters(keyringDb.prepare<[], string>(DATA_KEY.masterIds).pluck().all());
    this.selectHead = db.prepare<[string], HeadRow>(HEAD.select);
    this.upsertHead = db.prepare<[string, number, number, Uint8Array, number]>(HEAD.upsert);
    this.insertEntry = db.prepare<EntryValues>(ENTRY.insert);
    this.insertEntries = db.prepare<unknown[][]>(ENTRY.insertRows(INSERT_CHUNK));
    this.insertSnapshot = db.prepare<[string, number, number, Uint8Array]>(SNAPSHOT.insert);
    this.selectLatestSnapshot = db.prepare<[string], SnapshotRow>(SNAPSHOT.selectLatest);
    this.selectUpdatesAfter = db.prepare<[string, number], { seq: number; payload: Uint8Array }>(ENTRY.selectUpdatesAfter);
    this.selectEntries = db.prepare<[string, number, number], LogEntry>(ENTRY.selectPage);
    this.clientIds = {
      select: db.prepare<[string, number], { user_id: string; org_id: string }>(CLIENT_ID.select),
      insert: db.prepare<[string, number, string, string, string]>(CLIENT_ID.insert),
      selectAll: db.prepare<[string], { client_id: number; user_id: string; org_id: string; session_id: string }>(CLIENT_ID.selectAll),
    };
    this.destroy = {
      deleteClientIds: db.prepare<[string]>(DESTROY.deleteClientIds),
      deleteEntries: db.prepare<[string]>(DESTROY.deleteEntries),
      deleteSnapshots: db.prepare<[string]>(DESTROY.deleteSnapshots),
      deleteHead: db.prepare<[string]>(DESTROY.deleteHead),
      insertTombstone: db.prepare<[string, number]>(DESTROY.insertTombstone),
      selectTombstone: db.prepare<[string], string>(DESTROY.selectTombstone).pluck(),
    };
  }

  /**
   * Appends a batch, committed at `at`: the event loop's clock, sent with each batch (this thread
   * cannot be handed the server's clock, a function; once per batch keeps the packed batch as it is).
   */
  appendBatch(requests: readonly AppendRequest[], at: number): CommittedAppend[] {
    checkAppendBatch(requests);
    if (requests.length === 0) return [];
    // IMMEDIATE: take the write lock up front, so a second process can only make us wait
    // (busy_timeout), never fail a half-done batch on a lock upgrade. The write lock is what
    // makes reading the heads and writing after them atomic here (Postgres locks head rows).
    const conversations = conversationsOf(requests);
    const keys = this.ensureDataKeys(conversations, at);
    return this.db.transaction(() => this.appendAll(requests, conversations, keys, at)).immediate();
  }

  appendPacked(batch: ArrayBuffer, at: number): ArrayBuffer {
    return packCommitted(this.appendBatch(unpackAppendBatch(batch), at));
  }

  private appendAll(requests: readonly AppendRequest[], conversations: string[], keys: ReadonlyMap<string, KeyObject>, at: number): CommittedAppend[] {
    const heads = new Map<string, ConversationHead>();
    for (const conversation of conversations) {
      const row = this.selectHead.get(conversation);
      if (row) heads.set(conversation, headFromRow(row));
    }
    // The write lock is held: owners recorded by any earlier transaction are visible.
    const owners = new Map<string, ClientIdOwner>();
    for (const { conversation, client } of claimedIds(requests)) {
      const row = this.clientIds.select.get(conversation, client);
      if (row) owners.set(claimKey(conversation, client), { user: row.user_id, org: row.org_id });
    }
    const { refused, fresh } = decideClaims(requests, owners);
    const accepted = refused.size === 0 ? requests : requests.filter((_, i) => !refused.has(i));
    const plan = planAppends(accepted, heads, this.hasher, at);
    sealUpdates(plan.entries, keys);
    this.writeEntries(plan.entries);
    for (const [conversation, head] of plan.heads) this.writeHead(conversation, head);
    for (const claim of fresh) this.clientIds.insert.run(claim.conversation, claim.client, claim.user, claim.org, claim.session);
    return withRefusals(requests, refused, plan.committed);
  }

  /**
   * The data keys of a batch's conversations, creating the missing ones in the keyring file and
   * committing them there first (an orphan key, if the batch then fails, is harmless).
   */
  private ensureDataKeys(conversations: readonly string[], at: number): Map<string, KeyObject> {
    const keys = new Map<string, KeyObject>();
    const fresh: { conversation: string; made: ReturnType<typeof newDataKey> }[] = [];
    for (const conversation of conversations) {
      const key = this.dataKey(conversation);
      if (key) {
        keys.set(conversation, key);
        continue;
      }
      // Only a conversation without a data key can have been destroyed (its key goes first).
      if (this.destroy.selectTombstone.get(conversation) !== undefined) throw destroyedError(conversation);
      if (this.selectHead.get(conversation)) throw missingDataKeyError(conversation);
      const made = newDataKey(this.keys.currentMaster(), conversation);
      fresh.push({ conversation, made });
      keys.set(conversation, made.key);
    }
    if (fresh.length > 0) {
      this.keyringDb
        .transaction(() => {
          for (const { conversation, made } of fresh) {
            this.dataKeys.insert.run(conversation, made.stored.masterKeyId, made.stored.wrapped, at);
          }
        })
        .immediate();
      for (const { conversation, made } of fresh) this.keys.remember(conversation, made.key);
    }
    return keys;
  }

  /** The conversation's data key, from the cache or unwrapped from the keyring; undefined when it has none. */
  private dataKey(conversation: string): KeyObject | undefined {
    const cached = this.keys.cached(conversation);
    if (cached) return cached;
    const row = this.dataKeys.select.get(conversation);
    return row ? this.keys.unwrap(conversation, { masterKeyId: row.master_key_id, wrapped: row.wrapped }) : undefined;
  }

  private requireDataKey(conversation: string): KeyObject {
    const key = this.dataKey(conversation);
    if (!key) throw missingDataKeyError(conversation);
    return key;
  }

  private writeEntries(entries: readonly PlannedEntry[]): void {
    let i = 0;
    const args = this.chunkArgs;
    for (; i + INSERT_CHUNK <= entries.length; i += INSERT_CHUNK) {
      for (let j = 0; j < INSERT_CHUNK; j++) setEntryValues(args, j * ENTRY_COLUMNS.length, entries[i + j]);
      this.insertEntries.run(args);
    }
    for (; i < entries.length; i++) this.insertEntry.run(...entryValues(entries[i]));
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
      const rows = this.selectUpdatesAfter.all(conversation, covers);
      const key = snapshot || rows.length > 0 ? this.requireDataKey(conversation) : undefined;
      const updates = key ? openUpdates(key, conversation, rows).map((r) => r.payload) : [];
      return {
        snapshot: snapshot && key ? openRecord(key, conversation, "snapshot", snapshot.seq, snapshot.state) : null,
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
    const rows = this.selectUpdatesAfter.all(conversation, afterSeq);
    return rows.length === 0 ? rows : openUpdates(this.requireDataKey(conversation), conversation, rows);
  }

  readEntries(conversation: string, afterSeq: number, limit: number): LogEntry[] {
    checkConversation(conversation);
    checkAfterSeq(afterSeq);
    checkLimit(limit);
    const rows = this.selectEntries.all(conversation, afterSeq, limit);
    return rows.length === 0 ? rows : openEntries(this.requireDataKey(conversation), conversation, rows);
  }

  /** Compacts into a snapshot entry stamped `at` (the event loop's clock). */
  compact(conversation: string, at: number): CompactionResult | null {
    checkConversation(conversation);
    return this.db.transaction((): CompactionResult | null => {
      const headRow = this.selectHead.get(conversation);
      if (!headRow) return null;
      const previous = this.selectLatestSnapshot.get(conversation);
      const rows = this.selectUpdatesAfter.all(conversation, previous?.covers ?? 0);
      if (rows.length === 0) return null;
      const key = this.requireDataKey(conversation);
      const updates = openUpdates(key, conversation, rows).map((r) => r.payload);
      const merged = previous ? [openRecord(key, conversation, "snapshot", previous.seq, previous.state), ...updates] : updates;
      const state = Y.mergeUpdates(merged);
      const { entry, head } = planSnapshot(conversation, headFromRow(headRow), state, this.hasher, at);
      const covers = entry.seq - 1;
      this.writeEntries([entry]);
      this.insertSnapshot.run(conversation, entry.seq, covers, sealRecord(key, conversation, "snapshot", entry.seq, state));
      this.writeHead(conversation, head);
      return { seq: entry.seq, covers, size: state.byteLength };
    }).immediate();
  }

  /** Destroys the conversation, its tombstone stamped `at` (the event loop's clock). */
  destroyConversation(conversation: string, at: number): boolean {
    checkConversation(conversation);
    // Shred first, in its own durable commit: from here on no copy of the records can be read,
    // whatever happens to the row deletion below (a crash leaves undecryptable rows; a retry deletes them).
    const shredded = this.dataKeys.delete.run(conversation).changes > 0;
    this.keys.forget(conversation);
    return this.db.transaction((): boolean => {
      const existed = shredded || this.selectHead.get(conversation) !== undefined;
      const d = this.destroy;
      const removed = d.deleteEntries.run(conversation).changes + d.deleteSnapshots.run(conversation).changes;
      d.deleteClientIds.run(conversation);
      d.deleteHead.run(conversation);
      d.insertTombstone.run(conversation, at);
      return existed || removed > 0;
    }).immediate();
  }

  listClientIds(conversation: string): ClientIdRecord[] {
    checkConversation(conversation);
    return this.clientIds.selectAll.all(conversation).map((row) => ({ client: row.client_id, user: row.user_id, org: row.org_id, session: row.session_id }));
  }

  listChainHeads(sinceMs: number): ConversationChainHead[] {
    return this.db.prepare<[number], ConversationChainHead>(HEAD.listChangedSince).all(sinceMs);
  }

  lastActivity(conversations: readonly string[]): [string, number][] {
    // One bound JSON array instead of a statement per list length.
    const rows = this.db.prepare<[string], LastActivityRow>(HEAD.lastActivityOf("SELECT value FROM json_each(?)")).all(JSON.stringify(conversations));
    return rows.map((row) => [row.id, Number(row.head_at)]);
  }

  ping(): boolean {
    // Taking (and releasing) the write lock is what "can commit right now" means.
    this.db.exec("BEGIN IMMEDIATE");
    this.db.exec("ROLLBACK");
    return true;
  }

  close(): void {
    if (this.db.open) this.db.close();
    if (this.keyringDb.open) this.keyringDb.close();
  }
}
