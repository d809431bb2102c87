// Webhooks written once over a SqlRunner: the embedded backend runs this inside its worker
// thread on SQLite (webhooks.db), the shared one on the event loop against Postgres. Which node
// delivers an endpoint is not this store's business (see delivery-claims.ts).

import type { EventType } from "../../protocol/index.ts";
import type { SqlRunner } from "../sql/sql-runner.ts";
import { greatest } from "../events/partner-sql.ts";
import type { AttemptOutcome, DeadLetter, DeliveryAttempt, EndpointRecord, WebhookStore } from "./webhook-store.ts";

/** Attempts kept per endpoint in the log (older ones are removed). */
const ATTEMPTS_KEPT = 200;

/** Every operation of the store (what a worker serves). */
export const WEBHOOK_STORE_OPERATIONS = [
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
  "countReplays",
  "forgetEvents",
] as const;

/** Ids per statement when removing many events' copies (well under every backend's parameter limit). */
const FORGET_CHUNK = 500;

/** How long a forgotten event's id refuses late attempt records: far beyond any delivery's timeout. */
const FORGOTTEN_KEPT_MS = 60 * 60 * 1000;

/** The `org_id` of a tombstone that holds for every organisation (the conversation destroyed). */
const EVERY_ORG = "*";

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
    ok: row.ok === 1 || row.ok === true,
    status: (row.status as number | null) ?? null,
    error: (row.error as string | null) ?? null,
    durationMs: row.duration_ms as number,
    excerpt: row.excerpt as string,
  };
}

/** The webhook store over any SQL backend; see {@link WebhookStore}. */
export class SqlWebhookStore implements Omit<WebhookStore, "close"> {
  private readonly saveStateSql: string;

  constructor(private readonly db: SqlRunner) {
    this.saveStateSql = `UPDATE endpoints SET cursor = ${greatest(db.dialect)}(cursor, ?), head_key = ?, attempts = ?, first_failure_at = ?,
      next_attempt_at = ?, failing_since = ?, last_success_at = ?, last_error = ? WHERE id = ?`;
  }

  async createEndpoint(e: EndpointRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO endpoints (id, org_id, url, description, event_types, secret_sealed, status, created_at, created_by, cursor)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [e.id, e.orgId, e.url, e.description, JSON.stringify(e.eventTypes), e.secretSealed, e.status, e.createdAt, e.createdBy, e.delivery.cursor],
    );
  }

  async getEndpoint(id: string): Promise<EndpointRecord | null> {
    const row = await this.db.get("SELECT * FROM endpoints WHERE id = ?", [id]);
    return row ? endpointFrom(row) : null;
  }

  async listEndpoints(orgId: string): Promise<EndpointRecord[]> {
    return (await this.db.all("SELECT * FROM endpoints WHERE org_id = ? ORDER BY created_at, id", [orgId])).map(endpointFrom);
  }

  async listEnabledEndpoints(): Promise<EndpointRecord[]> {
    return (await this.db.all("SELECT * FROM endpoints WHERE status = 'enabled'")).map(endpointFrom);
  }

  async updateEndpoint(id: string, changes: { url?: string; description?: string | null; eventTypes?: EventType[]; secretSealed?: Uint8Array }): Promise<void> {
    // Only the fields given change (COALESCE keeps the others; a null description is a change).
    const keepDescription = changes.description === undefined;
    await this.db.run(
      `UPDATE endpoints SET url = COALESCE(?, url), description = CASE WHEN ? THEN description ELSE ? END,
       event_types = COALESCE(?, event_types), secret_sealed = COALESCE(?, secret_sealed) WHERE id = ?`,
      [
        changes.url ?? null,
        keepDescription,
        keepDescription ? null : (changes.description ?? null),
        changes.eventTypes ? JSON.stringify(changes.eventTypes) : null,
        changes.secretSealed ?? null,
        id,
      ],
    );
  }

  async setStatus(id: string, status: "enabled" | "disabled", reason: string | null, now: number): Promise<void> {
    if (status === "enabled") {
      // A fresh start: the head item gets a full retry window again.
      await this.db.run(
        `UPDATE endpoints SET status = 'enabled', disabled_at = NULL, disabled_reason = NULL, head_key = NULL, attempts = 0,
         first_failure_at = NULL, next_attempt_at = NULL, failing_since = NULL WHERE id = ?`,
        [id],
      );
    } else {
      await this.db.run("UPDATE endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ? WHERE id = ?", [now, reason, id]);
    }
  }

  deleteEndpoint(id: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM attempts WHERE endpoint_id = ?", [id]);
      await tx.run("DELETE FROM dead_letters WHERE endpoint_id = ?", [id]);
      return (await tx.run("DELETE FROM endpoints WHERE id = ?", [id])) === 1;
    });
  }

  recordOutcome(outcome: AttemptOutcome): Promise<void> {
    return this.db.transaction(async (tx) => {
      // The endpoint may have been deleted while the request was in flight: keep no orphans.
      const endpoint = await tx.get("SELECT org_id FROM endpoints WHERE id = ?", [outcome.endpointId]);
      if (!endpoint) return;
      const a = outcome.attempt;
      // So may the event (its side deleted, the conversation destroyed): then no copy of it
      // either, neither an attempt nor a dead letter; the delivery state still moves on.
      const forgotten = await tx.get("SELECT 1 AS gone FROM forgotten_events WHERE event_id = ? AND org_id IN (?, ?)", [
        a.eventId,
        endpoint.org_id as string,
        EVERY_ORG,
      ]);
      if (!forgotten) {
        await tx.run(
          "INSERT INTO attempts (endpoint_id, at, event_id, cursor, attempt, ok, status, error, duration_ms, excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          [a.endpointId, a.at, a.eventId, a.cursor, a.attempt, a.ok, a.status, a.error, a.durationMs, a.excerpt],
        );
        await tx.run(
          "DELETE FROM attempts WHERE endpoint_id = ? AND id <= (SELECT id FROM attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
          [a.endpointId, a.endpointId, ATTEMPTS_KEPT],
        );
      }
      const s = outcome.state;
      await tx.run(this.saveStateSql, [s.cursor, s.headKey, s.attempts, s.firstFailureAt, s.nextAttemptAt, s.failingSince, s.lastSuccessAt, s.lastError, outcome.endpointId]);
      if (outcome.park && !forgotten) {
        const p = outcome.park;
        await tx.run(
          `INSERT INTO dead_letters (id, endpoint_id, cursor, event_id, event_type, event_json, attempts, parked_at, last_error)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts,
           parked_at = excluded.parked_at, last_error = excluded.last_error, replay_requested_at = NULL`,
          [p.id, p.endpointId, p.cursor, p.eventId, p.eventType, p.eventJson, p.attempts, p.parkedAt, p.lastError],
        );
      }
      if (outcome.replayed) {
        await tx.run("UPDATE dead_letters SET replayed_at = ?, replay_requested_at = NULL WHERE id = ?", [a.at, outcome.replayed]);
      }
      if (outcome.disable) {
        await tx.run("UPDATE endpoints SET status = 'disabled', disabled_at = ?, disabled_reason = ? WHERE id = ?", [
          outcome.disable.at,
          outcome.disable.reason,
          outcome.endpointId,
        ]);
      }
    });
  }

  async listAttempts(endpointId: string, limit: number): Promise<DeliveryAttempt[]> {
    return (await this.db.all("SELECT * FROM attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?", [endpointId, limit])).map(attemptFrom);
  }

  async listDeadLetters(endpointId: string, limit: number): Promise<DeadLetter[]> {
    return (await this.db.all("SELECT * FROM dead_letters WHERE endpoint_id = ? ORDER BY cursor LIMIT ?", [endpointId, limit])).map(deadLetterFrom);
  }

  requestReplay(endpointId: string, ids: string[] | null, now: number): Promise<number> {
    const pending = "UPDATE dead_letters SET replay_requested_at = ? WHERE endpoint_id = ? AND replayed_at IS NULL AND replay_requested_at IS NULL";
    if (ids === null) return this.db.run(pending, [now, endpointId]);
    return this.db.transaction(async (tx) => {
      let n = 0;
      for (const id of ids) n += await tx.run(`${pending} AND id = ?`, [now, endpointId, id]);
      return n;
    });
  }

  async nextReplay(endpointId: string): Promise<DeadLetter | null> {
    const row = await this.db.get(
      "SELECT * FROM dead_letters WHERE endpoint_id = ? AND replay_requested_at IS NOT NULL AND replayed_at IS NULL ORDER BY cursor LIMIT 1",
      [endpointId],
    );
    return row ? deadLetterFrom(row) : null;
  }

  async countReplays(endpointId: string): Promise<number> {
    const row = await this.db.get("SELECT count(*) AS n FROM dead_letters WHERE endpoint_id = ? AND replay_requested_at IS NOT NULL AND replayed_at IS NULL", [endpointId]);
    return Number(row?.n ?? 0);
  }

  forgetEvents(eventIds: readonly string[], orgId: string | null, now: number): Promise<number> {
    if (eventIds.length === 0) return Promise.resolve(0);
    const ofOrg = orgId === null ? "" : " AND endpoint_id IN (SELECT id FROM endpoints WHERE org_id = ?)";
    return this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM forgotten_events WHERE forgotten_at < ?", [now - FORGOTTEN_KEPT_MS]);
      let removed = 0;
      for (let i = 0; i < eventIds.length; i += FORGET_CHUNK) {
        const chunk = eventIds.slice(i, i + FORGET_CHUNK);
        const params = orgId === null ? chunk : [...chunk, orgId];
        const list = chunk.map(() => "?").join(", ");
        removed += await tx.run(`DELETE FROM dead_letters WHERE event_id IN (${list})${ofOrg}`, params);
        removed += await tx.run(`DELETE FROM attempts WHERE event_id IN (${list})${ofOrg}`, params);
        const tombstones = chunk.map(() => "(?, ?, ?)").join(", ");
        await tx.run(
          `INSERT INTO forgotten_events (event_id, org_id, forgotten_at) VALUES ${tombstones} ON CONFLICT (event_id, org_id) DO UPDATE SET forgotten_at = excluded.forgotten_at`,
          chunk.flatMap((id) => [id, orgId ?? EVERY_ORG, now]),
        );
      }
      return removed;
    });
  }
}
