// Partner events written once over a SqlRunner: the embedded backend runs this inside its worker
// thread on SQLite (events.db), the shared one on the event loop against Postgres. An event is
// stored once; each receiving organisation's stream gets a row at its next cursor, allocated in
// the same transaction, so cursors have no gaps and no reuse.
//
// Several nodes appending at once (the outbox problem): a reader must never pass a cursor that
// was allocated but not yet committed. Cursors are allocated under a lock on the organisation's
// `streams` row, held until commit (SQLite: BEGIN IMMEDIATE locks the whole file; Postgres: the
// row lock of SELECT ... FOR UPDATE). A second writer to the same organisation waits, so cursor
// N+1 cannot commit before N, and every committed state a reader sees is a gap-free prefix of
// the stream. We chose this over reading below a "safe horizon" because it costs nothing when
// writers do not collide (the usual case: events of one organisation come in bursts from one
// node) and needs no clock or timeout to decide when a hole is final. Rows are locked in sorted
// organisation order so two writers never wait on each other in a cycle.

import { type EventType, OPT_IN_EVENT_TYPES } from "../../protocol/index.ts";
import type { SqlRunner } from "../sql/sql-runner.ts";
import type { AppendedEvent, DerivationState, EventRead, EventStore, NewEvent, StoredEvent } from "./event-store.ts";
import { greatest } from "./partner-sql.ts";

type Row = Record<string, unknown>;

/** Every operation of the store (what a worker serves). */
export const EVENT_STORE_OPERATIONS = [
  "append",
  "read",
  "countAfter",
  "head",
  "prune",
  "forgetConversation",
  "forgetConversationFor",
  "conversationEventIds",
  "markDirty",
  "markDerived",
  "listDirty",
  "listDerived",
  "derivationState",
] as const;

/** The stream entries a reader of `types` gets (no filter: every type but the opt-in ones, which only a reader naming them gets). */
function typeFilterOf(types: readonly EventType[] | null | undefined): { typeFilter: string; filtered: readonly string[] } {
  const named = types && types.length > 0;
  const filtered: readonly string[] = named ? types : OPT_IN_EVENT_TYPES;
  return { typeFilter: `AND s.type ${named ? "" : "NOT "}IN (${filtered.map(() => "?").join(", ")})`, filtered };
}

/**
 * A transaction for bookkeeping that may skip the flush to disk (see markDirty): the backend
 * decides how (SQLite: synchronous=NORMAL; Postgres: synchronous_commit=off).
 */
export type RelaxedTransaction = <T>(work: (tx: SqlRunner) => Promise<T>) => Promise<T>;

/** The event store over any SQL backend; see {@link EventStore} for what each operation promises. */
export class SqlEventStore implements Omit<EventStore, "close"> {
  private readonly sql;

  constructor(
    private readonly db: SqlRunner,
    private readonly relaxed: RelaxedTransaction,
  ) {
    const d = db.dialect;
    this.sql = {
      ensureStream: "INSERT INTO streams (org_id, head) VALUES (?, 0) ON CONFLICT (org_id) DO NOTHING",
      lockStream: `SELECT head FROM streams WHERE org_id = ?${d.lockRows}`,
      bumpHead: "UPDATE streams SET head = head + 1 WHERE org_id = ? RETURNING head",
      insertEvent: "INSERT INTO events (id, type, conversation_id, occurred_at, recorded_at, data) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
      insertEntry: "INSERT INTO stream_entries (org_id, cursor, event_seq, type, recorded_at) VALUES (?, ?, ?, ?, ?)",
      insertOnce: "INSERT INTO once_subjects (conversation_id, subject) VALUES (?, ?) ON CONFLICT DO NOTHING",
      // Changes nothing (0 rows) when the hash is already the recorded one: atomic across nodes.
      takeNotesHash: `INSERT INTO derivation (conversation_id, notes_hash) VALUES (?, ?) ON CONFLICT (conversation_id)
        DO UPDATE SET notes_hash = excluded.notes_hash WHERE derivation.notes_hash IS DISTINCT FROM excluded.notes_hash`,
      stream: "SELECT head, pruned_through FROM streams WHERE org_id = ?",
      // In organisation order, like append, so the two never lock stream rows in a cycle.
      pruneLimits: "SELECT org_id, MAX(cursor) AS through FROM stream_entries WHERE recorded_at < ? GROUP BY org_id ORDER BY org_id",
      pruneEntries: "DELETE FROM stream_entries WHERE org_id = ? AND cursor <= ?",
      prunedThrough: `UPDATE streams SET pruned_through = ${greatest(d)}(pruned_through, ?) WHERE org_id = ?`,
      pruneEvents: "DELETE FROM events WHERE recorded_at < ? AND NOT EXISTS (SELECT 1 FROM stream_entries s WHERE s.event_seq = events.seq)",
      // A destroyed conversation (server/lifecycle/): its events leave every stream, whatever their age.
      forget: [
        "DELETE FROM stream_entries WHERE event_seq IN (SELECT seq FROM events WHERE conversation_id = ?)",
        "DELETE FROM once_subjects WHERE conversation_id = ?",
        "DELETE FROM derivation WHERE conversation_id = ?",
      ],
      forgetEvents: "DELETE FROM events WHERE conversation_id = ?",
      // One organisation's side deleted: its entries go; an event no other stream holds goes with them.
      forgetEntriesOf: "DELETE FROM stream_entries WHERE org_id = ? AND event_seq IN (SELECT seq FROM events WHERE conversation_id = ?)",
      forgetUnreferencedOf:
        "DELETE FROM events WHERE conversation_id = ? AND NOT EXISTS (SELECT 1 FROM stream_entries s WHERE s.event_seq = events.seq)",
      eventIds: "SELECT id FROM events WHERE conversation_id = ?",
      markDirty: `INSERT INTO derivation (conversation_id, dirty_seq) VALUES (?, ?) ON CONFLICT (conversation_id)
        DO UPDATE SET dirty_seq = ${greatest(d)}(COALESCE(derivation.dirty_seq, 0), excluded.dirty_seq)`,
      markDerived: `INSERT INTO derivation (conversation_id, derived_seq) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET
        derived_seq = ${greatest(d)}(derivation.derived_seq, excluded.derived_seq),
        dirty_seq = CASE WHEN derivation.dirty_seq <= excluded.derived_seq THEN NULL ELSE derivation.dirty_seq END`,
      listDirty: "SELECT conversation_id, dirty_seq FROM derivation WHERE dirty_seq IS NOT NULL",
      listDerived: "SELECT conversation_id, derived_seq FROM derivation WHERE derived_seq > 0",
      subjects: "SELECT subject FROM once_subjects WHERE conversation_id = ?",
      notesHash: "SELECT notes_hash FROM derivation WHERE conversation_id = ?",
    };
  }

  append(events: readonly NewEvent[], now: number): Promise<AppendedEvent[]> {
    const orgsOf = (event: NewEvent) => [...new Set(event.orgs)];
    return this.db.transaction(async (tx) => {
      for (const org of [...new Set(events.flatMap(orgsOf))].sort()) {
        await tx.run(this.sql.ensureStream, [org]);
        await tx.get(this.sql.lockStream, [org]);
      }
      const appended: AppendedEvent[] = [];
      for (const event of events) {
        if (event.once !== undefined && (await tx.run(this.sql.insertOnce, [event.conversation, event.once])) === 0) continue;
        if (event.notesHash !== undefined && (await tx.run(this.sql.takeNotesHash, [event.conversation, event.notesHash])) === 0) continue;
        const orgs = orgsOf(event);
        if (orgs.length === 0) continue;
        const inserted = await tx.get<{ seq: number }>(this.sql.insertEvent, [
          event.id,
          event.type,
          event.conversation,
          event.occurredAt,
          now,
          JSON.stringify(event.data ?? {}),
        ]);
        const seq = Number(inserted?.seq);
        const cursors: AppendedEvent["cursors"] = [];
        for (const org of orgs) {
          const bumped = await tx.get<{ head: number }>(this.sql.bumpHead, [org]);
          const cursor = Number(bumped?.head);
          await tx.run(this.sql.insertEntry, [org, cursor, seq, event.type, now]);
          cursors.push({ org, cursor });
        }
        appended.push({ id: event.id, cursors });
      }
      return appended;
    });
  }

  async read(org: string, after: number, limit: number, types?: readonly EventType[] | null): Promise<EventRead> {
    const stream = await this.db.get(this.sql.stream, [org]);
    const head = Number(stream?.head ?? 0);
    const prunedThrough = Number(stream?.pruned_through ?? 0);
    if (after < prunedThrough) return { status: "expired", prunedThrough, head };
    if (after > head) return { status: "ahead", head };
    if (limit <= 0 || after === head) return { status: "ok", events: [], head };
    const { typeFilter, filtered } = typeFilterOf(types);
    const rows = await this.db.all(
      `SELECT s.cursor, e.id, e.type, e.conversation_id, e.occurred_at, e.data FROM stream_entries s
       JOIN events e ON e.seq = s.event_seq
       WHERE s.org_id = ? AND s.cursor > ? ${typeFilter} ORDER BY s.cursor LIMIT ?`,
      [org, after, ...filtered, limit],
    );
    const events: StoredEvent[] = rows.map((r) => ({
      cursor: Number(r.cursor),
      id: r.id as string,
      type: r.type as EventType,
      // Built here once, then sent as-is to every SSE client and webhook.
      json:
        `{"id":${JSON.stringify(r.id)},"cursor":${Number(r.cursor)},"type":${JSON.stringify(r.type)},` +
        `"occurredAt":${Number(r.occurred_at)},"conversation":${JSON.stringify(r.conversation_id)},"data":${r.data as string}}`,
    }));
    return { status: "ok", events, head };
  }

  async countAfter(org: string, after: number, types?: readonly EventType[] | null): Promise<number> {
    const { typeFilter, filtered } = typeFilterOf(types);
    const row = await this.db.get(`SELECT count(*) AS n FROM stream_entries s WHERE s.org_id = ? AND s.cursor > ? ${typeFilter}`, [org, after, ...filtered]);
    return Number(row?.n ?? 0);
  }

  async head(org: string): Promise<number> {
    const row = await this.db.get(this.sql.stream, [org]);
    return Number(row?.head ?? 0);
  }

  /**
   * Retention: per organisation, everything up to the newest entry recorded before `cutoff` goes
   * (a contiguous prefix, so "pruned through N" is exact), then events no stream refers to.
   */
  prune(cutoff: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const limits = await tx.all(this.sql.pruneLimits, [cutoff]);
      let removed = 0;
      for (const { org_id, through } of limits as Row[]) {
        removed += await tx.run(this.sql.pruneEntries, [org_id as string, Number(through)]);
        await tx.run(this.sql.prunedThrough, [Number(through), org_id as string]);
      }
      await tx.run(this.sql.pruneEvents, [cutoff]);
      return removed;
    });
  }

  forgetConversationFor(org: string, conversation: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const removed = await tx.run(this.sql.forgetEntriesOf, [org, conversation]);
      await tx.run(this.sql.forgetUnreferencedOf, [conversation]);
      return removed;
    });
  }

  async conversationEventIds(conversation: string): Promise<string[]> {
    return (await this.db.all(this.sql.eventIds, [conversation])).map((row) => row.id as string);
  }

  forgetConversation(conversation: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      for (const statement of this.sql.forget) await tx.run(statement, [conversation]);
      return tx.run(this.sql.forgetEvents, [conversation]);
    });
  }

  /**
   * Derivation bookkeeping follows every commit burst, so it skips the flush to disk (it still
   * survives a process crash, the case the marks exist for); losing a mark to an OS or database
   * crash only means one conversation is derived again, which reports nothing twice.
   */
  markDirty(entries: readonly [conversation: string, seq: number][]): Promise<void> {
    // Sorted: two nodes marking the same conversations lock their rows in one order.
    const sorted = [...entries].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return this.relaxed(async (tx) => {
      for (const [conversation, seq] of sorted) await tx.run(this.sql.markDirty, [conversation, seq]);
    });
  }

  markDerived(entries: readonly [conversation: string, seq: number][]): Promise<void> {
    // Sorted, as markDirty: two nodes moving the same watermarks lock their rows in one order.
    const sorted = [...entries].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return this.relaxed(async (tx) => {
      for (const [conversation, seq] of sorted) await tx.run(this.sql.markDerived, [conversation, seq]);
    });
  }

  async listDirty(): Promise<{ conversation: string; seq: number }[]> {
    const rows = await this.db.all(this.sql.listDirty);
    return rows.map((r) => ({ conversation: r.conversation_id as string, seq: Number(r.dirty_seq) }));
  }

  async listDerived(): Promise<{ conversation: string; seq: number }[]> {
    const rows = await this.db.all(this.sql.listDerived);
    return rows.map((r) => ({ conversation: r.conversation_id as string, seq: Number(r.derived_seq) }));
  }

  async derivationState(conversation: string): Promise<DerivationState> {
    const subjects = (await this.db.all(this.sql.subjects, [conversation])).map((r) => r.subject as string);
    const row = await this.db.get(this.sql.notesHash, [conversation]);
    return { subjects, notesHash: (row?.notes_hash as string | null | undefined) ?? null };
  }
}
