// Partner events on the embedded default: their own SQLite file, run in a worker thread (see
// server/worker/). An event is stored once; each receiving organisation's stream gets a row at
// its next cursor, allocated in the same transaction, so cursors have no gaps and no reuse.

import Database from "better-sqlite3";
import type { EventType } from "../../protocol/index.ts";
import type { SyncService } from "../worker/worker-service.ts";
import type { AppendedEvent, DerivationState, EventRead, NewEvent, StoredEvent } from "./event-store.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, conversation_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events(recorded_at);
CREATE TABLE IF NOT EXISTS streams (
  org_id TEXT PRIMARY KEY, head INTEGER NOT NULL, pruned_through INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS stream_entries (
  org_id TEXT NOT NULL, cursor INTEGER NOT NULL, event_seq INTEGER NOT NULL, type TEXT NOT NULL,
  recorded_at INTEGER NOT NULL, PRIMARY KEY (org_id, cursor)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stream_entries_by_time ON stream_entries(recorded_at);
CREATE INDEX IF NOT EXISTS stream_entries_by_event ON stream_entries(event_seq);
CREATE TABLE IF NOT EXISTS once_subjects (
  conversation_id TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (conversation_id, subject)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS derivation (
  conversation_id TEXT PRIMARY KEY, dirty_seq INTEGER, derived_seq INTEGER NOT NULL DEFAULT 0, notes_hash TEXT);
`;

type Row = Record<string, unknown>;

/** The synchronous event store; call it through the worker as an `EventStore` (see event-store.ts). */
export class SqliteEventStore implements SyncService {
  readonly operations = ["append", "read", "head", "prune", "markDirty", "markDerived", "listDirty", "derivationState", "close"] as const;

  private readonly insertEvent: Database.Statement;
  private readonly bumpHead: Database.Statement;
  private readonly insertEntry: Database.Statement;
  private readonly insertOnce: Database.Statement;

  constructor(private readonly db: Database.Database) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
    this.insertEvent = db.prepare(
      "INSERT INTO events (id, type, conversation_id, occurred_at, recorded_at, data) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.bumpHead = db.prepare(
      "INSERT INTO streams (org_id, head) VALUES (?, 1) ON CONFLICT (org_id) DO UPDATE SET head = head + 1 RETURNING head",
    );
    this.insertEntry = db.prepare("INSERT INTO stream_entries (org_id, cursor, event_seq, type, recorded_at) VALUES (?, ?, ?, ?, ?)");
    this.insertOnce = db.prepare("INSERT OR IGNORE INTO once_subjects (conversation_id, subject) VALUES (?, ?)");
  }

  close(): void {
    this.db.close();
  }

  append(events: readonly NewEvent[], now: number): AppendedEvent[] {
    return this.db.transaction(() => {
      const appended: AppendedEvent[] = [];
      for (const event of events) {
        if (event.once !== undefined && this.insertOnce.run(event.conversation, event.once).changes === 0) continue;
        if (event.notesHash !== undefined && !this.takeNotesHash(event.conversation, event.notesHash)) continue;
        const orgs = [...new Set(event.orgs)];
        if (orgs.length === 0) continue;
        const seq = Number(
          this.insertEvent.run(event.id, event.type, event.conversation, event.occurredAt, now, JSON.stringify(event.data ?? {})).lastInsertRowid,
        );
        const cursors = orgs.map((org) => {
          const { head } = this.bumpHead.get(org) as { head: number };
          this.insertEntry.run(org, head, seq, event.type, now);
          return { org, cursor: head };
        });
        appended.push({ id: event.id, cursors });
      }
      return appended;
    })();
  }

  /** Records a new notes hash; false when it is the one already recorded. */
  private takeNotesHash(conversation: string, hash: string): boolean {
    const row = this.db.prepare("SELECT notes_hash FROM derivation WHERE conversation_id = ?").get(conversation) as Row | undefined;
    if (row?.notes_hash === hash) return false;
    this.db
      .prepare("INSERT INTO derivation (conversation_id, notes_hash) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET notes_hash = excluded.notes_hash")
      .run(conversation, hash);
    return true;
  }

  read(org: string, after: number, limit: number, types: readonly EventType[] | null): EventRead {
    const stream = this.db.prepare("SELECT head, pruned_through FROM streams WHERE org_id = ?").get(org) as Row | undefined;
    const head = (stream?.head as number | undefined) ?? 0;
    const prunedThrough = (stream?.pruned_through as number | undefined) ?? 0;
    if (after < prunedThrough) return { status: "expired", prunedThrough, head };
    if (after > head) return { status: "ahead", head };
    if (limit <= 0 || after === head) return { status: "ok", events: [], head };
    const typeFilter = types && types.length > 0 ? `AND s.type IN (${types.map(() => "?").join(", ")})` : "";
    const rows = this.db
      .prepare(
        `SELECT s.cursor, e.id, e.type, e.conversation_id, e.occurred_at, e.data FROM stream_entries s
         JOIN events e ON e.seq = s.event_seq
         WHERE s.org_id = ? AND s.cursor > ? ${typeFilter} ORDER BY s.cursor LIMIT ?`,
      )
      .all(org, after, ...(types && types.length > 0 ? types : []), limit) as Row[];
    const events: StoredEvent[] = rows.map((r) => ({
      cursor: r.cursor as number,
      id: r.id as string,
      type: r.type as EventType,
      // Built here once, then sent as-is to every SSE client and webhook.
      json:
        `{"id":${JSON.stringify(r.id)},"cursor":${r.cursor as number},"type":${JSON.stringify(r.type)},` +
        `"occurredAt":${r.occurred_at as number},"conversation":${JSON.stringify(r.conversation_id)},"data":${r.data as string}}`,
    }));
    return { status: "ok", events, head };
  }

  head(org: string): number {
    const row = this.db.prepare("SELECT head FROM streams WHERE org_id = ?").get(org) as Row | undefined;
    return (row?.head as number | undefined) ?? 0;
  }

  /**
   * Retention: per organisation, everything up to the newest entry recorded before `cutoff` goes
   * (a contiguous prefix, so "pruned through N" is exact), then events no stream refers to.
   */
  prune(cutoff: number): number {
    return this.db.transaction(() => {
      const limits = this.db
        .prepare("SELECT org_id, MAX(cursor) AS through FROM stream_entries WHERE recorded_at < ? GROUP BY org_id")
        .all(cutoff) as Row[];
      let removed = 0;
      for (const { org_id, through } of limits) {
        removed += this.db.prepare("DELETE FROM stream_entries WHERE org_id = ? AND cursor <= ?").run(org_id, through).changes;
        this.db.prepare("UPDATE streams SET pruned_through = MAX(pruned_through, ?) WHERE org_id = ?").run(through, org_id);
      }
      this.db
        .prepare("DELETE FROM events WHERE recorded_at < ? AND NOT EXISTS (SELECT 1 FROM stream_entries s WHERE s.event_seq = events.seq)")
        .run(cutoff);
      return removed;
    })();
  }

  markDirty(entries: readonly [string, number][]): void {
    const mark = this.db.prepare(
      "INSERT INTO derivation (conversation_id, dirty_seq) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET dirty_seq = MAX(COALESCE(dirty_seq, 0), excluded.dirty_seq)",
    );
    this.withoutFsync(() => {
      for (const [conversation, seq] of entries) mark.run(conversation, seq);
    });
  }

  markDerived(conversation: string, seq: number): void {
    const mark = this.db.prepare(
      `INSERT INTO derivation (conversation_id, derived_seq) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET
       derived_seq = MAX(derived_seq, excluded.derived_seq),
       dirty_seq = CASE WHEN dirty_seq <= excluded.derived_seq THEN NULL ELSE dirty_seq END`,
    );
    this.withoutFsync(() => mark.run(conversation, seq));
  }

  /**
   * Derivation bookkeeping follows every commit burst, so it skips the fsync (synchronous=NORMAL
   * in WAL mode still survives a process crash, the case the marks exist for); losing a mark to
   * an OS crash only means one conversation is derived again, which reports nothing twice.
   */
  private withoutFsync(write: () => void): void {
    this.db.pragma("synchronous = NORMAL");
    try {
      this.db.transaction(write)();
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  listDirty(): { conversation: string; seq: number }[] {
    const rows = this.db.prepare("SELECT conversation_id, dirty_seq FROM derivation WHERE dirty_seq IS NOT NULL").all() as Row[];
    return rows.map((r) => ({ conversation: r.conversation_id as string, seq: r.dirty_seq as number }));
  }

  derivationState(conversation: string): DerivationState {
    const subjects = (this.db.prepare("SELECT subject FROM once_subjects WHERE conversation_id = ?").all(conversation) as Row[]).map(
      (r) => r.subject as string,
    );
    const row = this.db.prepare("SELECT notes_hash FROM derivation WHERE conversation_id = ?").get(conversation) as Row | undefined;
    return { subjects, notesHash: (row?.notes_hash as string | null | undefined) ?? null };
  }
}

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { path: string }): SqliteEventStore {
  return new SqliteEventStore(new Database(options.path));
}
