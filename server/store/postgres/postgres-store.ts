// The shared Store for several nodes: Postgres through a node-postgres pool (asynchronous, so no
// worker thread). Same contract as SQLite; what differs is concurrency between nodes: a commit
// locks its conversations' head rows (sorted, so nodes never deadlock) and chains after them.

import type { KeyObject } from "node:crypto";
import type pg from "pg";
import * as Y from "yjs";
import type { MasterKeyring } from "../../crypto/master-key.ts";
import { genesisHash } from "../audit-chain.ts";
import { EntryHasher } from "../entry-hasher.ts";
import { type ClaimedId, type ClientIdOwner, claimedIds, claimKey, decideClaims, withRefusals } from "../client-claims.ts";
import { type ConversationHead, conversationsOf, type PlannedEntry, planAppends, planSnapshot } from "../append-plan.ts";
import { DataKeyring, missingDataKeyError, newDataKey, openEntries, openRecord, openUpdates, sealRecord, sealUpdates, type WrappedDataKey } from "../envelope.ts";
import { DATA_KEY, type DataKeyRow, KEYRING_SCHEMA } from "../keyring.ts";
import { STORE_SCHEMA } from "../schema.ts";
import { entryValues, HEAD, type HeadRow, headFromRow, type LastActivityRow, type SnapshotRow } from "../queries.ts";
import { checkAfterSeq, checkAppendBatch, checkConversation, checkLimit } from "../request-checks.ts";
import { numberedPlaceholders } from "../../sql/sql-dialect.ts";
import type { AppendRequest, ClientIdRecord, CommittedAppend, CompactionResult, ConversationChainHead, DocumentState, LogEntry, Store } from "../store.ts";
import { destroyedError, StoreError } from "../../sql/store-error.ts";
import { migrate } from "../../sql/pg-migrate.ts";
import { toStoreError } from "../../sql/pg-errors.ts";
import { SCHEMA_NAME, StorePool } from "../../sql/pg-pool.ts";
import type { WorkerThread } from "../../sql/worker-service.ts";
import { type LockedHeadRow, PG } from "./statements.ts";
import { type Clock, systemClock } from "../../platform/clock.ts";

export interface PostgresStoreOptions {
  /**
   * e.g. `postgres://parley:secret@db.internal:5432/parley`. TLS: add `?sslmode=verify-full`
   * (with `&sslrootcert=/path/ca.pem` for a private CA) to verify the server's certificate and
   * name; `sslmode=require` is treated as verify-full by current node-postgres. A sslmode in the
   * URL takes precedence over the `ssl` option. Connect directly or through a session-mode
   * pooler: the store relies on named prepared statements and per-session settings.
   */
  connectionString: string;
  /** Key for the content HMACs in the audit chain; at least 16 bytes (32 recommended). The same on every node. */
  auditKey: Uint8Array;
  /** Master keys wrapping each conversation's data key (server/crypto/master-key.ts); the same on every node. */
  masterKeys: MasterKeyring;
  /** Schema holding Parley's tables (created if missing); a plain lowercase identifier. Default: the search_path's. */
  schema?: string;
  /** Connections per node. Default 10. */
  poolSize?: number;
  /**
   * TLS settings passed to node-postgres (tls.connect options): `true` for TLS with the system's
   * CAs, `{ ca, cert, key, servername }` for a private CA or client certificates. Default: none,
   * unless the connection string asks for it.
   */
  ssl?: pg.PoolConfig["ssl"];
  /** How long getting a connection may take before a call fails as `unavailable`. Default 5000. */
  connectTimeoutMs?: number;
  /** How long one statement may go unanswered before its call fails as `unavailable`. Default 30000. */
  queryTimeoutMs?: number;
  /** ping() answers false when Postgres has not answered within this time. Default 2000. */
  pingTimeoutMs?: number;
  /**
   * The clock tombstones and new data keys are stamped by (the server's; default: the system's).
   * Log entries and snapshots take the database's clock instead, so every node writes one timeline.
   */
  now?: Clock;
}

/** Connects, runs the migrations (safe when several nodes start together) and resolves with an open store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  if (!(options.auditKey instanceof Uint8Array) || options.auditKey.byteLength < 16) {
    throw new StoreError("invalid_request", "auditKey must be at least 16 bytes");
  }
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new StoreError("invalid_request", "schema must be a lowercase identifier (a-z, 0-9, _)");
  }
  const pool = new StorePool({
    connectionString: options.connectionString,
    ssl: options.ssl,
    schema: options.schema,
    poolSize: options.poolSize ?? 10,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
  });
  let keys: DataKeyring;
  try {
    await migrate(pool, options.schema, STORE_SCHEMA);
    await migrate(pool, options.schema, KEYRING_SCHEMA);
    keys = new DataKeyring(options.masterKeys);
    // Refuse to start on data keys some other master key wrapped, naming that key's id.
    keys.requireMasters((await pool.query<{ master_key_id: string }>({ text: DATA_KEY.masterIds })).rows.map((r) => r.master_key_id));
  } catch (err) {
    await pool.end().catch(() => {});
    throw toStoreError(err, "cannot open the Postgres store");
  }
  return new PostgresStore(pool, new EntryHasher(options.auditKey), keys, options.pingTimeoutMs ?? 2000, options.now ?? systemClock);
}

type Status = "open" | "closing" | "closed";

const KNOWN_HEADS_LIMIT = 100_000;

/** A Store backed by a Postgres database shared by every node. Create it with {@link openPostgresStore}. */
export class PostgresStore implements Store {
  /** A pool, no thread: a lost connection recovers by itself (readiness reports it meanwhile). */
  readonly workers: readonly WorkerThread[] = [];
  private status: Status = "open";
  private active = 0;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  /**
   * Conversations whose head row is known to exist: a batch touching only these skips creating
   * heads, one round trip of five. A cache, bounded, cleared when full; a miss only costs that trip.
   */
  private readonly knownHeads = new Set<string>();

  /** Use {@link openPostgresStore}; this takes a pool whose database is already migrated. */
  constructor(
    private readonly pool: StorePool,
    private readonly hasher: EntryHasher,
    private readonly dataKeys: DataKeyring,
    private readonly pingTimeoutMs: number,
    private readonly now: Clock,
  ) {}

  appendBatch(requests: readonly AppendRequest[]): Promise<CommittedAppend[]> {
    return this.run("appendBatch", async () => {
      checkAppendBatch(requests);
      if (requests.length === 0) return [];
      const conversations = conversationsOf(requests);
      const keys = await this.ensureDataKeys(conversations);
      const committed = await this.pool.transaction("BEGIN", async (client) => {
        const create = conversations.some((c) => !this.knownHeads.has(c));
        const { heads, now } = await lockHeads(client, conversations, create);
        // Read once the heads are locked, so a destruction committed meanwhile by another node
        // is seen (READ COMMITTED). A known head is never a destroyed one: destruction deletes it.
        if (create) await refuseDestroyed(client, conversations);
        if (heads.size !== conversations.length) {
          for (const c of conversations) {
            this.knownHeads.delete(c);
            this.dataKeys.forget(c);
          }
          throw new StoreError("internal", `found ${heads.size} of ${conversations.length} conversation heads; retry creates them`);
        }
        // The heads are locked: owners recorded by another node's earlier commit are visible.
        const owners = await selectClientOwners(client, claimedIds(requests));
        const { refused, fresh } = decideClaims(requests, owners);
        const accepted = refused.size === 0 ? requests : requests.filter((_, i) => !refused.has(i));
        const plan = planAppends(accepted, heads, this.hasher, now);
        sealUpdates(plan.entries, keys);
        if (plan.entries.length > 0) await writeEntries(client, plan.entries, plan.heads);
        if (fresh.length > 0) {
          await client.query(
            PG.insertClientIds.with([fresh.map((c) => c.conversation), fresh.map((c) => c.client), fresh.map((c) => c.user), fresh.map((c) => c.org), fresh.map((c) => c.session)]),
          );
        }
        return withRefusals(requests, refused, plan.committed);
      });
      this.rememberHeads(conversations);
      return committed;
    });
  }

  loadDocument(conversation: string): Promise<DocumentState> {
    return this.run("loadDocument", async () => {
      checkConversation(conversation);
      // One snapshot of the database, so the snapshot, the updates and the head agree.
      return this.pool.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", async (client) => {
        const head = (await client.query<HeadRow>(PG.selectHead.with([conversation]))).rows[0];
        if (!head) return { snapshot: null, snapshotCovers: 0, updates: [], updatesSinceSnapshot: 0, headSeq: 0 };
        const snapshot = (await client.query<SnapshotRow>(PG.selectLatestSnapshot.with([conversation]))).rows[0];
        const covers = snapshot?.covers ?? 0;
        const rows = (await client.query<{ seq: number; payload: Uint8Array }>(PG.selectUpdatesAfter.with([conversation, covers]))).rows;
        const key = snapshot || rows.length > 0 ? await this.requireDataKey(conversation) : undefined;
        const updates = key ? openUpdates(key, conversation, rows).map((r) => r.payload) : [];
        return {
          snapshot: snapshot && key ? openRecord(key, conversation, "snapshot", snapshot.seq, snapshot.state) : null,
          snapshotCovers: covers,
          updates,
          updatesSinceSnapshot: updates.length,
          headSeq: head.head_seq,
        };
      });
    });
  }

  readUpdatesSince(conversation: string, afterSeq: number): Promise<{ seq: number; payload: Uint8Array }[]> {
    return this.run("readUpdatesSince", async () => {
      checkConversation(conversation);
      checkAfterSeq(afterSeq);
      const { rows } = await this.pool.query<{ seq: number; payload: Uint8Array }>(PG.selectUpdatesAfter.with([conversation, afterSeq]));
      return rows.length === 0 ? rows : openUpdates(await this.requireDataKey(conversation), conversation, rows);
    });
  }

  readEntries(conversation: string, afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.run("readEntries", async () => {
      checkConversation(conversation);
      checkAfterSeq(afterSeq);
      checkLimit(limit);
      const { rows } = await this.pool.query<LogEntry>(PG.selectEntries.with([conversation, afterSeq, limit]));
      return rows.length === 0 ? rows : openEntries(await this.requireDataKey(conversation), conversation, rows);
    });
  }

  compact(conversation: string): Promise<CompactionResult | null> {
    return this.run("compact", async () => {
      checkConversation(conversation);
      // The head stays locked from reading the updates to writing the snapshot entry, so an
      // append from another node waits and then chains after the snapshot, never beside it.
      return this.pool.transaction("BEGIN", async (client): Promise<CompactionResult | null> => {
        const { heads, now } = await lockHeads(client, [conversation], false);
        const current = heads.get(conversation);
        if (!current) return null;
        const previous = (await client.query<SnapshotRow>(PG.selectLatestSnapshot.with([conversation]))).rows[0];
        const rows = (await client.query<{ seq: number; payload: Uint8Array }>(PG.selectUpdatesAfter.with([conversation, previous?.covers ?? 0]))).rows;
        if (rows.length === 0) return null;
        const key = await this.requireDataKey(conversation);
        const updates = openUpdates(key, conversation, rows).map((r) => r.payload);
        const merged = previous ? [openRecord(key, conversation, "snapshot", previous.seq, previous.state), ...updates] : updates;
        const state = Y.mergeUpdates(merged);
        const { entry, head } = planSnapshot(conversation, current, state, this.hasher, now);
        const covers = entry.seq - 1;
        await writeEntries(client, [entry], new Map([[conversation, head]]));
        await client.query(PG.insertSnapshot.with([conversation, entry.seq, covers, sealRecord(key, conversation, "snapshot", entry.seq, state)]));
        return { seq: entry.seq, covers, size: state.byteLength };
      });
    });
  }

  destroyConversation(conversation: string): Promise<boolean> {
    return this.run("destroyConversation", async () => {
      checkConversation(conversation);
      const existed = await this.pool.transaction("BEGIN", async (client) => {
        // Locking the head makes a concurrent append wait, then find no head and the tombstone.
        const { heads } = await lockHeads(client, [conversation], false);
        // One database, so shredding the data key and deleting the rows commit together.
        const shredded = await client.query(PG.deleteDataKey.with([conversation]));
        const entries = await client.query(PG.deleteEntries.with([conversation]));
        const snapshots = await client.query(PG.deleteSnapshots.with([conversation]));
        await client.query(PG.deleteClientIds.with([conversation]));
        await client.query(PG.deleteHead.with([conversation]));
        await client.query(PG.insertTombstone.with([conversation, this.now()]));
        return heads.size > 0 || (shredded.rowCount ?? 0) + (entries.rowCount ?? 0) + (snapshots.rowCount ?? 0) > 0;
      });
      this.knownHeads.delete(conversation);
      this.dataKeys.forget(conversation);
      return existed;
    });
  }

  listClientIds(conversation: string): Promise<ClientIdRecord[]> {
    return this.run("listClientIds", async () => {
      checkConversation(conversation);
      const { rows } = await this.pool.query<{ client_id: string; user_id: string; org_id: string; session_id: string }>(PG.selectAllClientIds.with([conversation]));
      return rows.map((row) => ({ client: Number(row.client_id), user: row.user_id, org: row.org_id, session: row.session_id }));
    });
  }

  listChainHeads(sinceMs: number): Promise<ConversationChainHead[]> {
    return this.run("listChainHeads", async () => {
      const { rows } = await this.pool.query<ConversationChainHead>({ text: numberedPlaceholders(HEAD.listChangedSince), values: [sinceMs] });
      return rows.map((row) => ({ conversation: row.conversation, seq: Number(row.seq), hash: row.hash }));
    });
  }

  lastActivity(conversations: readonly string[]): Promise<Map<string, number>> {
    return this.run("lastActivity", async () => {
      const { rows } = await this.pool.query<LastActivityRow>(PG.selectLastActivity.with([conversations]));
      return new Map(rows.map((row) => [row.id, Number(row.head_at)]));
    });
  }

  /**
   * The server settings an acknowledgement's durability rests on: with `fsync` off or
   * `synchronous_commit` off, a commit Postgres reported may be lost when Postgres crashes.
   */
  async durabilitySettings(): Promise<{ fsync: string; synchronousCommit: string }> {
    const { rows } = await this.pool.query<{ fsync: string; synchronous_commit: string }>({
      text: "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit",
    });
    return { fsync: rows[0].fsync, synchronousCommit: rows[0].synchronous_commit };
  }

  async ping(): Promise<boolean> {
    if (this.status !== "open") return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.pingTimeoutMs);
    });
    // A standby answers queries but cannot commit: that is "not ready" for a writer.
    const answered = this.pool.query<{ writable: boolean }>({ text: "SELECT NOT pg_is_in_recovery() AS writable" }).then(
      (r) => r.rows[0]?.writable === true,
      () => false,
    );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lets in-flight calls finish, then closes every connection; later calls reject with `closed`. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.status = "closing";
    if (this.active > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.status = "closed";
    await this.pool.end();
  }

  /**
   * Heads are deleted only by destroyConversation: a remembered head that is gone makes the
   * batch fail once (heads.size check), forgets it, and the retry finds the tombstone.
   */
  private rememberHeads(conversations: readonly string[]): void {
    if (this.knownHeads.size + conversations.length > KNOWN_HEADS_LIMIT) this.knownHeads.clear();
    for (const c of conversations) this.knownHeads.add(c);
  }

  /**
   * The data keys of a batch's conversations, creating missing ones first in their own commit (an
   * orphan key is harmless). Two nodes creating one at once: the first stored wins, both use it.
   */
  private async ensureDataKeys(conversations: readonly string[]): Promise<Map<string, KeyObject>> {
    const keys = new Map<string, KeyObject>();
    const missing = conversations.filter((c) => {
      const cached = this.dataKeys.cached(c);
      if (cached) keys.set(c, cached);
      return !cached;
    });
    if (missing.length === 0) return keys;
    let stored = await this.storedDataKeys(missing);
    const absent = missing.filter((c) => !stored.has(c));
    if (absent.length > 0) {
      const { rows } = await this.pool.query<{ id: string }>(PG.selectTombstones.with([absent]));
      if (rows.length > 0) throw destroyedError(rows[0].id);
      const master = this.dataKeys.currentMaster();
      const now = this.now();
      const created = absent.map((c) => newDataKey(master, c).stored);
      await this.pool.query(
        PG.insertDataKeys.with([absent, created.map((w) => w.masterKeyId), created.map((w) => Buffer.from(w.wrapped)), absent.map(() => now)]),
      );
      stored = new Map([...stored, ...(await this.storedDataKeys(absent))]);
    }
    for (const c of missing) {
      const wrapped = stored.get(c);
      if (!wrapped) throw missingDataKeyError(c);
      keys.set(c, this.dataKeys.unwrap(c, wrapped));
    }
    return keys;
  }

  private async storedDataKeys(conversations: string[]): Promise<Map<string, WrappedDataKey>> {
    const { rows } = await this.pool.query<DataKeyRow>(PG.selectDataKeys.with([conversations]));
    return new Map(rows.map((r) => [r.conversation_id, { masterKeyId: r.master_key_id, wrapped: r.wrapped }]));
  }

  private async requireDataKey(conversation: string): Promise<KeyObject> {
    const cached = this.dataKeys.cached(conversation);
    if (cached) return cached;
    const wrapped = (await this.storedDataKeys([conversation])).get(conversation);
    if (!wrapped) throw missingDataKeyError(conversation);
    return this.dataKeys.unwrap(conversation, wrapped);
  }

  /** Runs one store call: refused once closing, counted for close(), failures mapped to StoreError. */
  private async run<T>(doing: string, call: () => Promise<T>): Promise<T> {
    if (this.status !== "open") throw new StoreError("closed", "the store is closed");
    this.active++;
    try {
      return await call();
    } catch (err) {
      throw toStoreError(err, doing);
    } finally {
      if (--this.active === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
  }
}

/**
 * Locks the heads of `conversations` (sorted) for the rest of the transaction and returns the
 * ones that exist, with the database clock. With `create`, missing heads are created first
 * (always before locking, so every writer takes its locks in the same order).
 */
async function lockHeads(
  client: pg.PoolClient,
  conversations: string[],
  create: boolean,
): Promise<{ heads: Map<string, ConversationHead>; now: number }> {
  if (create) await client.query(PG.ensureHeads.with([conversations, conversations.map(genesisHash)]));
  const { rows } = await client.query<LockedHeadRow>(PG.lockHeads.with([conversations]));
  const heads = new Map<string, ConversationHead>();
  let now = 0;
  for (const row of rows) {
    heads.set(row.id, headFromRow(row));
    now = Math.max(now, row.now);
  }
  return { heads, now };
}

/** The recorded owners of the claimed client ids, keyed by claimKey. */
async function selectClientOwners(client: pg.PoolClient, claimed: readonly ClaimedId[]): Promise<Map<string, ClientIdOwner>> {
  const owners = new Map<string, ClientIdOwner>();
  if (claimed.length === 0) return owners;
  const { rows } = await client.query<{ conversation_id: string; client_id: string; user_id: string; org_id: string }>(
    PG.selectClientIds.with([claimed.map((c) => c.conversation), claimed.map((c) => c.client)]),
  );
  for (const row of rows) owners.set(claimKey(row.conversation_id, row.client_id), { user: row.user_id, org: row.org_id });
  return owners;
}

/** Refuses the batch when any of its conversations was destroyed (rolling back heads it created). */
async function refuseDestroyed(client: pg.PoolClient, conversations: string[]): Promise<void> {
  const { rows } = await client.query<{ id: string }>(PG.selectTombstones.with([conversations]));
  if (rows.length > 0) throw destroyedError(rows[0].id);
}

/** Inserts the planned entries and moves the heads, in one statement. */
async function writeEntries(client: pg.PoolClient, entries: readonly PlannedEntry[], heads: ReadonlyMap<string, ConversationHead>): Promise<void> {
  const columns: unknown[][] = Array.from({ length: 12 }, () => new Array(entries.length));
  for (let i = 0; i < entries.length; i++) {
    const values = entryValues(entries[i]);
    for (let c = 0; c < values.length; c++) columns[c][i] = values[c];
  }
  const ids: string[] = [];
  const seqs: number[] = [];
  const hashes: Uint8Array[] = [];
  const ats: number[] = [];
  for (const [id, head] of heads) {
    ids.push(id);
    seqs.push(head.seq);
    hashes.push(head.hash);
    ats.push(head.at);
  }
  const result = await client.query(PG.writeEntriesAndHeads.with([...columns, ids, seqs, hashes, ats]));
  if (result.rowCount !== heads.size) {
    throw new StoreError("internal", `moved ${result.rowCount} of ${heads.size} conversation heads`);
  }
}
