// The WebhookStore seam: registered endpoints (secret sealed), each endpoint's delivery state
// (its cursor in the organisation's event stream and the retry state of the event at its head),
// the log of recent attempts and the dead-letter list. One implementation over SQL
// (./sql-webhook-store.ts) runs on a SQLite file in a worker thread (one node) or on the shared
// Postgres (several nodes); see ./partner-storage.ts, which picks one.

import type { EventType } from "../../protocol/index.ts";

/** An endpoint's delivery state: where it is in the stream and how its head item is doing. */
export interface DeliveryState {
  /** Last event of the stream handed off (delivered or parked); the next one is after it. */
  cursor: number;
  /** What the retry fields below are about: `event:<cursor>` or `replay:<deadLetterId>`. */
  headKey: string | null;
  /** Failed attempts of the head item. */
  attempts: number;
  firstFailureAt: number | null;
  nextAttemptAt: number | null;
  /** First failure since the last success (drives disabling). */
  failingSince: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
}

/** A registered endpoint as the API shows it (never its secret). */
export interface WebhookEndpoint {
  id: string;
  orgId: string;
  url: string;
  description: string | null;
  /** Event types delivered; empty means all. */
  eventTypes: EventType[];
  status: "enabled" | "disabled";
  createdAt: number;
  createdBy: string;
  disabledAt: number | null;
  disabledReason: string | null;
  delivery: DeliveryState;
}

/** An endpoint with its sealed secret (for the dispatcher only). */
export interface EndpointRecord extends WebhookEndpoint {
  secretSealed: Uint8Array;
}

/** One delivery attempt, as logged. */
export interface DeliveryAttempt {
  endpointId: string;
  at: number;
  eventId: string;
  cursor: number;
  /** 1 for the first try of this item, then 2, 3, … */
  attempt: number;
  ok: boolean;
  status: number | null;
  error: string | null;
  durationMs: number;
  /** The start of the response body (at most a few hundred characters). */
  excerpt: string;
}

/** An event that could not be delivered within the retry window. */
export interface DeadLetter {
  id: string;
  endpointId: string;
  cursor: number;
  eventId: string;
  eventType: EventType;
  /** The event as it would have been sent (kept beyond event retention, so it can be replayed). */
  eventJson: string;
  attempts: number;
  parkedAt: number;
  lastError: string | null;
  /** Set while a replay is pending. */
  replayRequestedAt: number | null;
  replayedAt: number | null;
}

/** What one attempt changed, written in one transaction. */
export interface AttemptOutcome {
  endpointId: string;
  attempt: DeliveryAttempt;
  state: DeliveryState;
  /** The item was given up on: park it (a new dead letter, or the replayed one again). */
  park?: Omit<DeadLetter, "replayRequestedAt" | "replayedAt">;
  /** A replayed dead letter was delivered. */
  replayed?: string;
  /** The endpoint is disabled (failing too long). */
  disable?: { at: number; reason: string };
}

/** The persistence contract for webhooks. */
export interface WebhookStore {
  createEndpoint(endpoint: EndpointRecord): Promise<void>;
  getEndpoint(id: string): Promise<EndpointRecord | null>;
  listEndpoints(orgId: string): Promise<EndpointRecord[]>;
  listEnabledEndpoints(): Promise<EndpointRecord[]>;
  updateEndpoint(id: string, changes: { url?: string; description?: string | null; eventTypes?: EventType[]; secretSealed?: Uint8Array }): Promise<void>;
  /** Enables (clearing the failure state) or disables an endpoint. */
  setStatus(id: string, status: "enabled" | "disabled", reason: string | null, now: number): Promise<void>;
  deleteEndpoint(id: string): Promise<boolean>;
  recordOutcome(outcome: AttemptOutcome): Promise<void>;
  listAttempts(endpointId: string, limit: number): Promise<DeliveryAttempt[]>;
  listDeadLetters(endpointId: string, limit: number): Promise<DeadLetter[]>;
  /** Queues dead letters for delivery again (all not yet replayed, or the given ids); returns how many. */
  requestReplay(endpointId: string, ids: string[] | null, now: number): Promise<number>;
  /** The oldest dead letter waiting to be replayed. */
  nextReplay(endpointId: string): Promise<DeadLetter | null>;
  /** How many dead letters wait to be replayed. */
  countReplays(endpointId: string): Promise<number>;
  /**
   * Removes the delivery attempts and dead letters of these events (a conversation destroyed, or
   * one organisation's side of it deleted: then only at that organisation's endpoints), at `now`
   * (the server's clock: the record that they were forgotten is kept for a while from then); returns how many rows went.
   */
  forgetEvents(eventIds: readonly string[], orgId: string | null, now: number): Promise<number>;
  close(): Promise<void>;
}

/** A webhook store over `api` (e.g. calls into a worker), closed by `close`. */
export function webhookStoreOver(api: Omit<WebhookStore, "close">, close: () => Promise<void>): WebhookStore {
  return {
    createEndpoint: (endpoint) => api.createEndpoint(endpoint),
    getEndpoint: (id) => api.getEndpoint(id),
    listEndpoints: (orgId) => api.listEndpoints(orgId),
    listEnabledEndpoints: () => api.listEnabledEndpoints(),
    updateEndpoint: (id, changes) => api.updateEndpoint(id, changes),
    setStatus: (id, status, reason, now) => api.setStatus(id, status, reason, now),
    deleteEndpoint: (id) => api.deleteEndpoint(id),
    recordOutcome: (outcome) => api.recordOutcome(outcome),
    listAttempts: (endpointId, limit) => api.listAttempts(endpointId, limit),
    listDeadLetters: (endpointId, limit) => api.listDeadLetters(endpointId, limit),
    requestReplay: (endpointId, ids, now) => api.requestReplay(endpointId, ids, now),
    nextReplay: (endpointId) => api.nextReplay(endpointId),
    countReplays: (endpointId) => api.countReplays(endpointId),
    forgetEvents: (eventIds, orgId, now) => api.forgetEvents(eventIds, orgId, now),
    close,
  };
}
