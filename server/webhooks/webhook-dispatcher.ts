// Delivers an organisation's events to its webhook endpoints: per endpoint, one item at a time
// in cursor order (parked items replayed from the API go first), signed, retried with backoff
// for at least the retry window, then parked in the dead-letter list so the next event can go.
// An endpoint without a success for days is disabled and the fact logged as a security event.
// The endpoint's cursor and retry state are stored after every attempt: a restart resumes where
// it stopped, and a graceful shutdown waits for the request in flight, so nothing is sent twice
// (a crash between a receiver's 2xx and the store write can repeat one: receivers deduplicate
// on the event id).
// With several nodes (shared Postgres), every node runs a loop per enabled endpoint but only the
// node holding the endpoint's claim (delivery-claims.ts) delivers; the others retry the claim
// every few seconds, so a node that stops hands its endpoints over. A node taking a claim first
// re-reads the endpoint and its stored state (the previous holder advanced it), and every node
// re-reads the enabled endpoints periodically to see those created, edited, disabled or deleted
// through another node.

import { randomUUID } from "node:crypto";
import { EVENT_TYPES } from "../../protocol/index.ts";
import { openSecret } from "../crypto/secret-box.ts";
import type { EventNotifier } from "../events/event-notifier.ts";
import type { EventStore, StoredEvent } from "../events/event-store.ts";
import type { Logger } from "../platform/logger.ts";
import { type DeliveryClaims, SOLE_NODE_CLAIMS } from "./delivery-claims.ts";
import type { WebhookTransport } from "./outbound-http.ts";
import { type Clock, type RetryPolicy, retryDelay } from "./retry-schedule.ts";
import { SIGNATURE_HEADER, signPayload } from "./signature.ts";
import type { AttemptOutcome, DeadLetter, DeliveryState, EndpointRecord, WebhookStore } from "./webhook-store.ts";

/** Associated data binding a sealed secret to its endpoint. */
export const secretAssociatedData = (endpointId: string) => `webhook:${endpointId}`;

/** Events read ahead per endpoint. */
const READ_AHEAD = 50;
/** Wait after a store failure before trying again. */
const STORE_RETRY_MS = 1000;
/** How often a node without an endpoint's claim tries to take it. */
const CLAIM_RETRY_MS = 2000;

/** Dependencies of {@link WebhookDispatcher}. */
export interface WebhookDispatcherDeps {
  store: WebhookStore;
  events: Pick<EventStore, "read" | "countAfter">;
  notifier: EventNotifier;
  transport: WebhookTransport;
  secretsKey: Uint8Array;
  policy: RetryPolicy;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** Which endpoints this node delivers (default: all of them, one node alone). */
  claims?: DeliveryClaims;
  /** With several nodes: how often to re-read the enabled endpoints (changes made through other nodes). */
  refreshMs?: number;
  /** Told each attempt's outcome (metrics): delivered, failed (will retry), parked, and disabled endpoints. */
  onOutcome?: (outcome: "delivered" | "failed" | "parked" | "disabled") => void;
}

/** The item at an endpoint's head: the next event, or a dead letter being replayed. */
interface HeadItem {
  key: string;
  cursor: number;
  eventId: string;
  type: StoredEvent["type"];
  json: string;
  deadLetter: DeadLetter | null;
}

/** One endpoint's delivery loop. */
class EndpointDelivery {
  private state: DeliveryState;
  private secret: string;
  /**
   * Deliveries this endpoint owes, exactly: the events of its types after its cursor (read ahead
   * or not yet read; its head item included while it waits for a retry) and the dead letters
   * queued for replay. None when another node holds the endpoint (that node counts them).
   */
  async owed(): Promise<number> {
    if (this.stopped || !this.claims.holds(this.endpoint.id)) return 0;
    const types = this.endpoint.eventTypes.length > 0 ? this.endpoint.eventTypes : undefined;
    const [events, replays] = await Promise.all([this.deps.events.countAfter(this.endpoint.orgId, this.state.cursor, types), this.deps.store.countReplays(this.endpoint.id)]);
    return events + replays;
  }
  private readonly claims: DeliveryClaims;
  private buffer: StoredEvent[] = [];
  private replaysPending = true;
  private stopped = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private timer: unknown = null;
  private readonly loop: Promise<void>;

  constructor(
    readonly endpoint: EndpointRecord,
    private readonly deps: WebhookDispatcherDeps,
  ) {
    this.state = { ...endpoint.delivery };
    this.claims = deps.claims ?? SOLE_NODE_CLAIMS;
    this.secret = this.openSecret(endpoint);
    this.loop = this.run().catch((error: unknown) => deps.logger.error({ err: error, endpoint: endpoint.id }, "webhook delivery loop failed"));
  }

  /**
   * Settles once this loop has ended: stopped, or the endpoint disabled after failing too long.
   * Nothing is sent for the endpoint by this loop after that.
   */
  ended(): Promise<void> {
    return this.loop;
  }

  /** New events (or a replay request): look again now. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Dead letters may have been queued for replay (through another node): look for them. */
  checkReplays(): void {
    this.replaysPending = true;
    this.wake();
  }

  /** Stops after the request in flight (if any) is settled and recorded, and lets other nodes take the endpoint. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await this.claims.release(this.endpoint.id).catch(() => {});
  }

  private openSecret(endpoint: EndpointRecord): string {
    return Buffer.from(openSecret(this.deps.secretsKey, endpoint.secretSealed, secretAssociatedData(endpoint.id))).toString("utf8");
  }

  /** True when this node holds the endpoint's claim, taking it (and the stored state) if it can. */
  private async claimed(): Promise<boolean> {
    if (this.claims.holds(this.endpoint.id)) return true;
    if (!(await this.claims.claim(this.endpoint.id))) return false;
    const fresh = await this.deps.store.getEndpoint(this.endpoint.id);
    if (!fresh || fresh.status !== "enabled") {
      this.stopped = true;
      return false;
    }
    this.deps.logger.info({ endpoint: this.endpoint.id, org: this.endpoint.orgId }, "webhook endpoint claimed: this node delivers it");
    this.secret = this.openSecret(fresh);
    Object.assign(this.endpoint, fresh);
    this.state = { ...fresh.delivery };
    this.buffer = [];
    this.replaysPending = true;
    return true;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!(await this.claimed())) {
          await this.pause(CLAIM_RETRY_MS, false);
          continue;
        }
      } catch (error) {
        this.deps.logger.warn({ err: error, endpoint: this.endpoint.id }, "webhook: could not claim the endpoint; retrying");
        await this.pause(STORE_RETRY_MS, false);
        continue;
      }
      let item: HeadItem | null;
      try {
        item = await this.head();
      } catch (error) {
        this.deps.logger.warn({ err: error, endpoint: this.endpoint.id }, "webhook: could not read the next event; retrying");
        await this.pause(STORE_RETRY_MS, false);
        continue;
      }
      if (this.stopped) return;
      if (!item) {
        await this.pause(null, true);
        continue;
      }
      if (this.state.headKey !== item.key) {
        this.state = { ...this.state, headKey: item.key, attempts: 0, firstFailureAt: null, nextAttemptAt: null };
      }
      const wait = this.state.nextAttemptAt === null ? 0 : this.state.nextAttemptAt - this.deps.clock.now();
      if (wait > 0) {
        // New events do not cut a backoff short; a replay request or re-enable restarts the loop.
        await this.pause(wait, false);
        continue;
      }
      try {
        await this.attempt(item);
      } catch (error) {
        // Whatever broke (the claim store, the transport), the loop goes on after a pause: one
        // failure must not end this endpoint's deliveries until the next restart.
        this.deps.logger.warn({ err: error, endpoint: this.endpoint.id }, "webhook: delivery attempt failed; retrying");
        await this.pause(STORE_RETRY_MS, false);
      }
    }
  }

  /** Sleeps for `ms` (null: until woken); `wakeable`: new events end the sleep. */
  private pause(ms: number | null, wakeable: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        if (this.timer !== null) this.deps.clock.clearTimer(this.timer);
        this.timer = null;
        this.wakeUp = null;
        resolve();
      };
      this.wakeUp = () => {
        if (wakeable || this.stopped) {
          this.woken = false;
          done();
        }
      };
      if (ms !== null) this.timer = this.deps.clock.setTimer(done, ms);
    });
  }

  private async head(): Promise<HeadItem | null> {
    if (this.replaysPending) {
      const letter = await this.deps.store.nextReplay(this.endpoint.id);
      if (letter) {
        return { key: `replay:${letter.id}`, cursor: letter.cursor, eventId: letter.eventId, type: letter.eventType, json: letter.eventJson, deadLetter: letter };
      }
      this.replaysPending = false;
    }
    if (this.buffer.length === 0) {
      this.woken = false;
      const types = this.endpoint.eventTypes.length > 0 ? this.endpoint.eventTypes : undefined;
      const read = await this.deps.events.read(this.endpoint.orgId, this.state.cursor, READ_AHEAD, types);
      if (read.status === "expired") {
        this.deps.logger.warn(
          { endpoint: this.endpoint.id, org: this.endpoint.orgId, from: this.state.cursor, to: read.prunedThrough },
          "webhook endpoint was behind the event retention window; older events were skipped",
        );
        this.state = { ...this.state, cursor: read.prunedThrough, lastError: `events ${this.state.cursor + 1}-${read.prunedThrough} expired before delivery` };
        return this.head();
      }
      if (read.status === "ahead") return null;
      this.buffer = read.events;
    }
    const next = this.buffer[0];
    if (!next) return null;
    return { key: `event:${next.cursor}`, cursor: next.cursor, eventId: next.id, type: next.type, json: next.json, deadLetter: null };
  }

  /**
   * False when a stream event left the organisation's stream after it was read ahead (its side of
   * the conversation deleted, or the conversation destroyed): it must not be sent, nor a copy kept.
   */
  private async stillInStream(item: HeadItem): Promise<boolean> {
    if (item.deadLetter !== null) return true;
    // Unreadable now (store trouble): go on as if present; the next read of the stream decides.
    // Every type named, opt-in ones (security notices) included: the item is whatever was read ahead.
    const read = await this.deps.events.read(this.endpoint.orgId, item.cursor - 1, 1, EVENT_TYPES).catch(() => null);
    return read === null || read.status !== "ok" || read.events[0]?.id === item.eventId;
  }

  /** Drops a head item that left the stream: the next one is after it, and nothing of it stays. */
  private async forgetGone(item: HeadItem): Promise<void> {
    this.buffer.shift();
    this.state = { ...this.state, cursor: Math.max(this.state.cursor, item.cursor), headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null };
    await this.deps.store.forgetEvents([item.eventId], this.endpoint.orgId, this.deps.clock.now()).catch((error: unknown) => {
      this.deps.logger.error({ err: error, endpoint: this.endpoint.id }, "webhook: could not remove the copies of a deleted event");
    });
  }

  private async attempt(item: HeadItem): Promise<void> {
    // The claim went with its connection (or the connection no longer answers): another node
    // may deliver this item now. The loop tries to claim the endpoint again.
    if (!(await this.claims.confirm(this.endpoint.id).catch(() => false))) return;
    if (!(await this.stillInStream(item))) return this.forgetGone(item);
    const { clock, policy } = this.deps;
    const attemptNo = this.state.attempts + 1;
    const sentAt = clock.now();
    const headers = {
      "Content-Type": "application/json",
      [SIGNATURE_HEADER]: signPayload(this.secret, item.json, Math.floor(sentAt / 1000)),
      "Parley-Event-Id": item.eventId,
      "Parley-Event-Type": item.type,
      "Parley-Delivery-Attempt": String(attemptNo),
      "Parley-Endpoint-Id": this.endpoint.id,
    };
    const result = await this.deps.transport.post({ url: this.endpoint.url, body: item.json, headers });
    const at = clock.now();
    const outcome: AttemptOutcome = {
      endpointId: this.endpoint.id,
      attempt: {
        endpointId: this.endpoint.id,
        at,
        eventId: item.eventId,
        cursor: item.cursor,
        attempt: attemptNo,
        ok: result.ok,
        status: result.status,
        error: result.error,
        durationMs: result.durationMs,
        excerpt: result.excerpt,
      },
      state: this.state,
    };
    const advance = item.deadLetter === null ? item.cursor : this.state.cursor;
    if (result.ok) {
      outcome.state = { ...this.state, cursor: advance, headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null, failingSince: null, lastSuccessAt: at, lastError: null };
      if (item.deadLetter) outcome.replayed = item.deadLetter.id;
    } else {
      const firstFailureAt = this.state.firstFailureAt ?? at;
      const failingSince = this.state.failingSince ?? at;
      const lastError = result.error ?? "failed";
      if (at - firstFailureAt >= policy.windowMs) {
        outcome.park = {
          id: item.deadLetter?.id ?? `dlq_${randomUUID().replaceAll("-", "")}`,
          endpointId: this.endpoint.id,
          cursor: item.cursor,
          eventId: item.eventId,
          eventType: item.type,
          eventJson: item.json,
          attempts: attemptNo,
          parkedAt: at,
          lastError,
        };
        outcome.state = { ...this.state, cursor: advance, headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null, failingSince, lastError };
      } else {
        const nextAttemptAt = at + retryDelay(attemptNo, policy, this.deps.random);
        outcome.state = { ...this.state, attempts: attemptNo, firstFailureAt, nextAttemptAt, failingSince, lastError };
      }
      if (at - failingSince >= policy.disableAfterMs) {
        outcome.disable = { at, reason: `no successful delivery since ${new Date(failingSince).toISOString()} (last error: ${lastError})` };
      }
    }
    try {
      await this.deps.store.recordOutcome(outcome);
    } catch (error) {
      // The receiver's answer stands; only the record failed. Keep going from memory (a restart
      // before the next successful write may send this item again: receivers deduplicate on id).
      this.deps.logger.error({ err: error, endpoint: this.endpoint.id }, "webhook: could not record a delivery attempt");
    }
    // Deleted while it was in flight: the record just written must not outlive the deletion.
    if (!(await this.stillInStream(item))) return this.forgetGone(item);
    this.state = outcome.state;
    this.deps.onOutcome?.(result.ok ? "delivered" : outcome.park ? "parked" : "failed");
    if (outcome.disable) this.deps.onOutcome?.("disabled");
    if (item.deadLetter === null && (result.ok || outcome.park)) this.buffer.shift();
    if (item.deadLetter !== null && (result.ok || outcome.park)) this.replaysPending = true;
    if (outcome.park) {
      this.deps.logger.warn({ endpoint: this.endpoint.id, org: this.endpoint.orgId, event: item.eventId, attempts: attemptNo }, "webhook event parked in the dead-letter list");
    }
    if (outcome.disable) {
      this.stopped = true;
      this.endpoint.status = "disabled";
      this.deps.logger.warn(
        { security: "webhook-endpoint-disabled", endpoint: this.endpoint.id, org: this.endpoint.orgId, failingSince: outcome.state.failingSince, lastError: outcome.state.lastError },
        "webhook endpoint disabled after failing for too long",
      );
    }
  }
}

/** Every enabled endpoint's delivery loop on this node. */
export class WebhookDispatcher {
  private readonly deliveries = new Map<string, EndpointDelivery>();
  private readonly orgListeners = new Map<string, () => void>();
  private readonly reloads = new Map<string, Promise<void>>();
  private refreshTimer: unknown = null;
  private closed = false;

  constructor(private readonly deps: WebhookDispatcherDeps) {}

  /**
   * Deliveries owed by the endpoints this node delivers (enabled, claimed here): events not yet
   * delivered nor parked, and dead letters queued for replay. Summed over the nodes, the cluster's.
   */
  async backlog(): Promise<number> {
    const owed = await Promise.all([...this.deliveries.values()].map((delivery) => delivery.owed()));
    return owed.reduce((sum, n) => sum + n, 0);
  }

  /**
   * Settles once the endpoint's delivery loop on this node has ended (disabled after failing too
   * long, or stopped), at once when it has none: from then on nothing is sent to it from this node
   * until a reload starts a new loop. What a test waits on instead of "long enough".
   */
  deliveryEnded(endpointId: string): Promise<void> {
    return this.deliveries.get(endpointId)?.ended() ?? Promise.resolve();
  }

  /** Starts the loops of every enabled endpoint. */
  async start(): Promise<void> {
    for (const endpoint of await this.deps.store.listEnabledEndpoints()) this.add(endpoint);
    if (this.deps.refreshMs) this.scheduleRefresh(this.deps.refreshMs);
  }

  private scheduleRefresh(ms: number): void {
    this.refreshTimer = this.deps.clock.setTimer(() => {
      void this.refresh()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, "webhook: could not re-read the endpoints"))
        .finally(() => {
          if (!this.closed) this.scheduleRefresh(ms);
        });
    }, ms);
  }

  /** Catches up with changes made through other nodes: new, edited, disabled or deleted endpoints, replay requests. */
  async refresh(): Promise<void> {
    const enabled = await this.deps.store.listEnabledEndpoints();
    if (this.closed) return;
    const ids = new Set(enabled.map((endpoint) => endpoint.id));
    for (const endpoint of enabled) {
      const current = this.deliveries.get(endpoint.id);
      if (this.reloads.has(endpoint.id)) continue;
      if (!current || configChanged(current.endpoint, endpoint)) void this.reload(endpoint.id);
      else current.checkReplays();
    }
    for (const id of this.deliveries.keys()) if (!ids.has(id)) void this.reload(id);
  }

  /** Picks up a change to an endpoint (created, edited, enabled, disabled, deleted, replay requested). */
  reload(endpointId: string): Promise<void> {
    const previous = this.reloads.get(endpointId) ?? Promise.resolve();
    const next = previous.then(async () => {
      const current = this.deliveries.get(endpointId);
      if (current) {
        this.deliveries.delete(endpointId);
        await current.stop();
      }
      if (this.closed) return;
      const endpoint = await this.deps.store.getEndpoint(endpointId);
      if (endpoint && endpoint.status === "enabled") this.add(endpoint);
      else if (current) this.forgetOrgIfIdle(current.endpoint.orgId);
    });
    const settled = next.catch((error: unknown) => this.deps.logger.error({ err: error, endpoint: endpointId }, "webhook endpoint reload failed"));
    this.reloads.set(endpointId, settled);
    void settled.finally(() => {
      if (this.reloads.get(endpointId) === settled) this.reloads.delete(endpointId);
    });
    return settled;
  }

  /** Stops every loop, waiting for requests in flight (each bounded by the request timeout). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer !== null) this.deps.clock.clearTimer(this.refreshTimer);
    await Promise.all(this.reloads.values());
    for (const off of this.orgListeners.values()) off();
    this.orgListeners.clear();
    await Promise.all([...this.deliveries.values()].map((delivery) => delivery.stop()));
    this.deliveries.clear();
  }

  private forgetOrgIfIdle(org: string): void {
    for (const delivery of this.deliveries.values()) if (delivery.endpoint.orgId === org) return;
    this.orgListeners.get(org)?.();
    this.orgListeners.delete(org);
  }

  private add(endpoint: EndpointRecord): void {
    let delivery: EndpointDelivery;
    try {
      delivery = new EndpointDelivery(endpoint, this.deps);
    } catch (error) {
      this.deps.logger.error({ err: error, endpoint: endpoint.id }, "webhook endpoint cannot start (secret does not open)");
      return;
    }
    this.deliveries.set(endpoint.id, delivery);
    if (!this.orgListeners.has(endpoint.orgId)) {
      const org = endpoint.orgId;
      this.orgListeners.set(
        org,
        this.deps.notifier.on(org, () => {
          for (const d of this.deliveries.values()) if (d.endpoint.orgId === org) d.wake();
        }),
      );
    }
  }
}

/** True when what a delivery uses of an endpoint (address, types, secret) differs between two reads. */
function configChanged(a: EndpointRecord, b: EndpointRecord): boolean {
  return a.url !== b.url || a.eventTypes.join() !== b.eventTypes.join() || Buffer.compare(Buffer.from(a.secretSealed), Buffer.from(b.secretSealed)) !== 0;
}
