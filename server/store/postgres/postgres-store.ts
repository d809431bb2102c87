// The shared Store for several nodes: Postgres through a node-postgres pool (asynchronous, so no
// worker thread). Same contract as SQLite; what differs is concurrency between nodes: a commit
// locks its conversations' head rows (sorted, so nodes never deadlock) and chains after them.

import type { KeyObject } from "node:crypto";
import type pg from "pg";
import * as Y from "yjs";
import { genesisHash, importAuditKey } from "../../log/audit-chain.ts";
import { type ConversationHead, conversationsOf, type PlannedEntry, planAppends, planSnapshot } from "../append-plan.ts";
import { entryValues, type HeadRow, headFromRow, type SnapshotRow } from "../queries.ts";
import { checkAfterSeq, checkAppendBatch, checkConversation, checkLimit } from "../request-checks.ts";
import type { AppendRequest, CommittedAppend, CompactionResult, DocumentState, LogEntry, Store } from "../store.ts";
import { destroyedError, StoreError } from "../store-error.ts";
import { migrate } from "./migrate.ts";
import { toStoreError } from "./pg-errors.ts";
import { SCHEMA_NAME, StorePool } from "./pool.ts";
import { type LockedHeadRow, PG } from "./statements.ts";

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
  try {
    await migrate(pool, options.schema);
  } catch (err) {
    await pool.end().catch(() => {});
    throw toStoreError(err, "cannot open the Postgres store");
  }
  return new PostgresStore(pool, importAuditKey(options.auditKey), options.pingTimeoutMs ?? 2000);
}

type Status = "open" | "closing" | "closed";

const KNOWN_HEADS_LIMIT = 100_000;

/** A Store backed by a Postgres database shared by every node. Create it with {@link openPostgresStore}. */
export class PostgresStore implements Store {
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
    private readonly key: KeyObject,
    private readonly pingTimeoutMs: number,
  ) {}

  appendBatch(requests: readonly AppendRequest[]): Promise<CommittedAppend[]> {
    return this.run("appendBatch", async () => {
      checkAppendBatch(requests);
      if (requests.length === 0) return [];
      const conversations = conversationsOf(requests);
      const committed = await this.pool.transaction("BEGIN", async (client) => {
        const create = conversations.some((c) => !this.knownHeads.has(c));
        const { heads, now } = await lockHeads(client, conversations, create);
        // Read once the heads are locked, so a destruction committed meanwhile by another node
        // is seen (READ COMMITTED). A known head is never a destroyed one: destruction deletes it.
        if (create) await refuseDestroyed(client, conversations);
        if (heads.size !== conversations.length) {
          for (const c of conversations) this.knownHeads.delete(c);
          throw new StoreError("internal", `found ${heads.size} of ${conversations.length} conversation heads; retry creates them`);
        }
        const plan = planAppends(requests, heads, this.key, now);
        await writeEntries(client, plan.entries, plan.heads);
        return plan.committed;
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
        const updates = await payloadsAfter(client, conversation, covers);
        return {
          snapshot: snapshot?.state ?? null,
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
      return (await this.pool.query<{ seq: number; payload: Uint8Array }>(PG.selectUpdatesAfter.with([conversation, afterSeq]))).rows;
    });
  }

  readEntries(conversation: string, afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.run("readEntries", async () => {
      checkConversation(conversation);
      checkAfterSeq(afterSeq);
      checkLimit(limit);
      return (await this.pool.query<LogEntry>(PG.selectEntries.with([conversation, afterSeq, limit]))).rows;
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
        const updates = await payloadsAfter(client, conversation, previous?.covers ?? 0);
        if (updates.length === 0) return null;
        const state = Y.mergeUpdates(previous ? [previous.state, ...updates] : updates);
        const { entry, head } = planSnapshot(conversation, current, state, this.key, now);
        const covers = entry.seq - 1;
        await writeEntries(client, [entry], new Map([[conversation, head]]));
        await client.query(PG.insertSnapshot.with([conversation, entry.seq, covers, state]));
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
        const entries = await client.query(PG.deleteEntries.with([conversation]));
        const snapshots = await client.query(PG.deleteSnapshots.with([conversation]));
        await client.query(PG.deleteHead.with([conversation]));
        await client.query(PG.insertTombstone.with([conversation, Date.now()]));
        return heads.size > 0 || (entries.rowCount ?? 0) + (snapshots.rowCount ?? 0) > 0;
      });
      this.knownHeads.delete(conversation);
      return existed;
    });
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

async function payloadsAfter(client: pg.PoolClient, conversation: string, afterSeq: number): Promise<Uint8Array[]> {
  const { rows } = await client.query<{ payload: Uint8Array }>(PG.selectPayloadsAfter.with([conversation, afterSeq]));
  return rows.map((r) => r.payload);
}
