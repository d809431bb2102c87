// Webhooks on the embedded default: endpoints, delivery state, the attempt log and dead letters
// in their own SQLite file, run in a worker thread. Every attempt's consequences (log row,
// cursor move, parking, disabling) are one transaction, so a crash never half-records one.

import Database from "better-sqlite3";
import type { EventType } from "../../protocol/index.ts";
import type { SyncService } from "../worker/worker-service.ts";
import type { AttemptOutcome, DeadLetter, DeliveryAttempt, DeliveryState, EndpointRecord } from "./webhook-store.ts";

/** Attempts kept per endpoint in the log (older ones are removed). */
const ATTEMPTS_KEPT = 200;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS endpoints (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, url TEXT NOT NULL, description TEXT, event_types TEXT NOT NULL,
  secret_sealed BLOB NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
  disabled_at INTEGER, disabled_reason TEXT,
  cursor INTEGER NOT NULL, head_key TEXT, attempts INTEGER NOT NULL DEFAULT 0, first_failure_at INTEGER,
  next_attempt_at INTEGER, failing_since INTEGER, last_success_at INTEGER, last_error TEXT);
CREATE INDEX IF NOT EXISTS endpoints_by_org ON endpoints(org_id);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY, endpoint_id TEXT NOT NULL, at INTEGER NOT NULL, event_id TEXT NOT NULL, cursor INTEGER NOT NULL,
  attempt INTEGER NOT NULL, ok INTEGER NOT NULL, status INTEGER, error TEXT, duration_ms INTEGER NOT NULL, excerpt TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_by_endpoint ON attempts(endpoint_id, id);
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, cursor INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
  event_json TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at INTEGER NOT NULL, last_error TEXT,
  replay_requested_at INTEGER, replayed_at INTEGER);
CREATE INDEX IF NOT EXISTS dead_letters_by_endpoint ON dead_letters(endpoint_id, cursor);
`;

type Row = Record<string, unknown>;

function endpointFrom(row: Row): EndpointRecord {
  return {
    id: row.id as string,
    orgId: row.org_id as string,
    url: row.url as string,
    description: (row.description as string | null) ?? null,
    eventTypes: JSON.parse(row.event_types as string) as EventType[],
    status: row.status as "enabled" | "disabled",
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
    disabledAt: (row.disabled_at as number | null) ?? null,
    disabledReason: (row.disabled_reason as string | null) ?? null,
    secretSealed: new Uint8Array(row.secret_sealed as Buffer),
    delivery: {
      cursor: row.cursor as number,
      headKey: (row.head_key as string | null) ?? null,
      attempts: row.attempts as number,
      firstFailureAt: (row.first_failure_at as number | null) ?? null,
      nextAttemptAt: (row.next_attempt_at as number | null) ?? null,
      failingSince: (row.failing_since as number | null) ?? null,
      lastSuccessAt: (row.last_success_at as number | null) ?? null,
      lastError: (row.last_error as string | null) ?? null,
    },
  };
}

function deadLetterFrom(row: Row): DeadLetter {
  return {
    id: row.id as string,
    endpointId: row.endpoint_id as string,
    cursor: row.cursor as number,
    eventId: row.event_id as string,
    eventType: row.event_type as EventType,
    eventJson: row.event_json as string,
    attempts: row.attempts as number,
    parkedAt: row.parked_at as number,
    lastError: (row.last_error as string | null) ?? null,
    replayRequestedAt: (row.replay_requested_at as number | null) ?? null,
    replayedAt: (row.replayed_at as number | null) ?? null,
  };
}

function attemptFrom(row: Row): DeliveryAttempt {
  return {
    endpointId: row.endpoint_id as string,
    at: row.at as number,
    eventId: row.event_id as string,
    cursor: row.cursor as number,
    attempt: row.attempt as number,
    ok: row.ok === 1,
    status: (row.status as number | null) ?? null,
    error: (row.error as string | null) ?? null,
    durationMs: row.duration_ms as number,
    excerpt: row.excerpt as string,
  };
}

/** The synchronous webhook store; call it through the worker as a `WebhookStore`. */
export class SqliteWebhookStore implements SyncService {
  readonly operations = [
    "createEndpoint",
    "getEndpoint",
    "listEndpoints",
    "listEnabledEndpoints",
    "updateEndpoint",
    "setStatus",
    "deleteEndpoint",
    "recordOutcome",
    "listAttempts",
    "listDeadLetters",
    "requestReplay",
    "nextReplay",
    "close",
  ] as const;

  constructor(private readonly db: Database.Database) {
    db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash; an OS crash may lose the last few attempt
    // records, which can only mean an event delivered again (receivers deduplicate on its id).
    // FULL would cost an fsync per delivery and cap an endpoint at a few hundred a second.
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  createEndpoint(e: EndpointRecord): void {
    this.db
      .prepare(
        `INSERT INTO endpoints (id, org_id, url, description, event_types, secret_sealed, status, created_at, created_by, cursor)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(e.id, e.orgId, e.url, e.description, JSON.stringify(e.eventTypes), e.secretSealed, e.status, e.createdAt, e.createdBy, e.delivery.cursor);
  }

  getEndpoint(id: string): EndpointRecord | null {
    const row = this.db.prepare("SELECT * FROM endpoints WHERE id = ?").get(id) as Row | undefined;
    return row ? endpointFrom(row) : null;
  }

  listEndpoints(orgId: string): EndpointRecord[] {
    return (this.db.prepare("SELECT * FROM endpoints WHERE org_id = ? ORDER BY created_at, id").all(orgId) as Row[]).map(endpointFrom);
  }

  listEnabledEndpoints(): EndpointRecord[] {
    return (this.db.prepare("SELECT * FROM endpoints WHERE status = 'enabled'").all() as Row[]).map(endpointFrom);
  }

  updateEndpoint(id: string, changes: { url?: string; description?: string | null; eventTypes?: EventType[]; secretSealed?: Uint8Array }): void {
    const current = this.getEndpoint(id);
    if (!current) return;
    this.db
      .prepare("UPDATE endpoints SET url = ?, description = ?, event_types = ?, secret_sealed = ? WHERE id = ?")
      .run(
        changes.url ?? current.url,
        changes.description === undefined ? current.description : changes.description,
        JSON.stringify(changes.eventTypes ?? current.eventTypes),
        changes.secretSealed ?? current.secretSealed,
        id,
      );
  }

  setStatus(id: string, status: "enabled" | "disabled", reason: string | null, now: number): void {
    if (status === "enabled") {
      // A fresh start: the head item gets a full retry window again.
      this.db
        .prepare(
          `UPDATE endpoints SET status = 'enabled', disabled_at = NULL, disabled_reason = NULL, head_key = NULL, attempts = 0,
           first_failure_at = NULL, next_attempt_at = NULL, failing_since = NULL WHERE id = ?`,
        )
        .run(id);
    } else {
      this.db.prepare("UPDATE endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ? WHERE id = ?").run(now, reason, id);
    }
  }

  deleteEndpoint(id: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare("DELETE FROM attempts WHERE endpoint_id = ?").run(id);
      this.db.prepare("DELETE FROM dead_letters WHERE endpoint_id = ?").run(id);
      return this.db.prepare("DELETE FROM endpoints WHERE id = ?").run(id).changes === 1;
    })();
  }

  recordOutcome(outcome: AttemptOutcome): void {
    this.db.transaction(() => {
      // The endpoint may have been deleted while the request was in flight: keep no orphans.
      if (!this.db.prepare("SELECT 1 FROM endpoints WHERE id = ?").get(outcome.endpointId)) return;
      const a = outcome.attempt;
      this.db
        .prepare(
          "INSERT INTO attempts (endpoint_id, at, event_id, cursor, attempt, ok, status, error, duration_ms, excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(a.endpointId, a.at, a.eventId, a.cursor, a.attempt, a.ok ? 1 : 0, a.status, a.error, a.durationMs, a.excerpt);
      this.db
        .prepare(
          `DELETE FROM attempts WHERE endpoint_id = ? AND id <= (SELECT id FROM attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
        )
        .run(a.endpointId, a.endpointId, ATTEMPTS_KEPT);
      this.saveState(outcome.endpointId, outcome.state);
      if (outcome.park) {
        const p = outcome.park;
        this.db
          .prepare(
            `INSERT INTO dead_letters (id, endpoint_id, cursor, event_id, event_type, event_json, attempts, parked_at, last_error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts,
             parked_at = excluded.parked_at, last_error = excluded.last_error, replay_requested_at = NULL`,
          )
          .run(p.id, p.endpointId, p.cursor, p.eventId, p.eventType, p.eventJson, p.attempts, p.parkedAt, p.lastError);
      }
      if (outcome.replayed) {
        this.db.prepare("UPDATE dead_letters SET replayed_at = ?, replay_requested_at = NULL WHERE id = ?").run(a.at, outcome.replayed);
      }
      if (outcome.disable) {
        this.db
          .prepare("UPDATE endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ? WHERE id = ?")
          .run(outcome.disable.at, outcome.disable.reason, outcome.endpointId);
      }
    })();
  }

  private saveState(id: string, s: DeliveryState): void {
    this.db
      .prepare(
        `UPDATE endpoints SET cursor = MAX(cursor, ?), head_key = ?, attempts = ?, first_failure_at = ?, next_attempt_at = ?,
         failing_since = ?, last_success_at = ?, last_error = ? WHERE id = ?`,
      )
      .run(s.cursor, s.headKey, s.attempts, s.firstFailureAt, s.nextAttemptAt, s.failingSince, s.lastSuccessAt, s.lastError, id);
  }

  listAttempts(endpointId: string, limit: number): DeliveryAttempt[] {
    return (this.db.prepare("SELECT * FROM attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?").all(endpointId, limit) as Row[]).map(attemptFrom);
  }

  listDeadLetters(endpointId: string, limit: number): DeadLetter[] {
    return (this.db.prepare("SELECT * FROM dead_letters WHERE endpoint_id = ? ORDER BY cursor LIMIT ?").all(endpointId, limit) as Row[]).map(deadLetterFrom);
  }

  requestReplay(endpointId: string, ids: string[] | null, now: number): number {
    if (ids === null) {
      return this.db
        .prepare("UPDATE dead_letters SET replay_requested_at = ? WHERE endpoint_id = ? AND replayed_at IS NULL AND replay_requested_at IS NULL")
        .run(now, endpointId).changes;
    }
    const update = this.db.prepare(
      "UPDATE dead_letters SET replay_requested_at = ? WHERE endpoint_id = ? AND id = ? AND replayed_at IS NULL AND replay_requested_at IS NULL",
    );
    return this.db.transaction(() => ids.reduce((n, id) => n + update.run(now, endpointId, id).changes, 0))();
  }

  nextReplay(endpointId: string): DeadLetter | null {
    const row = this.db
      .prepare("SELECT * FROM dead_letters WHERE endpoint_id = ? AND replay_requested_at IS NOT NULL AND replayed_at IS NULL ORDER BY cursor LIMIT 1")
      .get(endpointId) as Row | undefined;
    return row ? deadLetterFrom(row) : null;
  }
}

/** Entry point for the worker thread (server/worker/worker-entry.mjs). */
export function openService(options: { path: string }): SqliteWebhookStore {
  return new SqliteWebhookStore(new Database(options.path));
}
