// The webhook dispatcher on a test clock: days of retries run in milliseconds against the real
// SQLite stores, with a transport that fails on demand. It shows the retry schedule (backoff
// with jitter, at least 24 h), parking, replay from the dead-letter list, in-order delivery, and
// an endpoint disabled (with a security log line) after failing for days.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sealSecret } from "../server/crypto/secret-box.ts";
import { EventNotifier } from "../server/events/event-notifier.ts";
import { newEventId } from "../server/events/event-recorder.ts";
import type { EventStore } from "../server/events/event-store.ts";
import { createLogger } from "../server/platform/logger.ts";
import type { OutboundRequest, OutboundResult, WebhookTransport } from "../server/webhooks/outbound-http.ts";
import { openPartnerStorage, type PartnerStorage } from "../server/webhooks/partner-storage.ts";
import { type Clock, type RetryPolicy, retryDelay } from "../server/webhooks/retry-schedule.ts";
import { verifySignature } from "../server/webhooks/signature.ts";
import { secretAssociatedData, WebhookDispatcher } from "../server/webhooks/webhook-dispatcher.ts";
import type { EndpointRecord, WebhookStore } from "../server/webhooks/webhook-store.ts";

const HOUR = 3600_000;
const ORG = "org_helpdesk";

/** A clock whose timers fire only when the test says so. */
class TestClock implements Clock {
  time = Date.UTC(2030, 0, 1);
  private nextId = 1;
  readonly timers = new Map<number, { at: number; callback: () => void }>();
  now(): number {
    return this.time;
  }
  setTimer(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time to the earliest timer and fires it. */
  fireNext(): void {
    const [id, timer] = [...this.timers].sort((a, b) => a[1].at - b[1].at)[0];
    this.timers.delete(id);
    this.time = Math.max(this.time, timer.at);
    timer.callback();
  }
}

/** A transport that records requests and answers with `answer`. */
class TestTransport implements WebhookTransport {
  readonly requests: { at: number; request: OutboundRequest; ok: boolean }[] = [];
  answer: (request: OutboundRequest) => boolean = () => true;
  constructor(private readonly clock: TestClock) {}
  async post(request: OutboundRequest): Promise<OutboundResult> {
    const ok = this.answer(request);
    this.requests.push({ at: this.clock.now(), request, ok });
    return ok
      ? { ok: true, status: 200, error: null, excerpt: "ok", durationMs: 1 }
      : { ok: false, status: 503, error: "HTTP 503", excerpt: "down for maintenance", durationMs: 1 };
  }
}

const policy: RetryPolicy = { baseMs: 5000, maxDelayMs: HOUR, windowMs: 24 * HOUR, disableAfterMs: 72 * HOUR };

let dir: string;
let storage: PartnerStorage;
let events: EventStore;
let store: WebhookStore;
let clock: TestClock;
let transport: TestTransport;
let dispatcher: WebhookDispatcher;
let notifier: EventNotifier;
let logLines: string[];
const secretsKey = randomBytes(32);
const secret = "whsec_test-secret";

async function appendEvents(count: number): Promise<void> {
  const batch = Array.from({ length: count }, (_, i) => ({
    id: newEventId(),
    type: "message.created" as const,
    conversation: "cnv_1",
    occurredAt: clock.now(),
    data: { message: { id: `m${i}`, authorUser: "u", authorOrg: ORG, text: `message ${i}`, createdAt: clock.now() }, seq: i + 1 },
    orgs: [ORG],
  }));
  await events.append(batch, clock.now());
}

async function register(id = "whk_1"): Promise<void> {
  const endpoint: EndpointRecord = {
    id,
    orgId: ORG,
    url: "https://hooks.partner.example/parley",
    description: null,
    eventTypes: [],
    status: "enabled",
    createdAt: clock.now(),
    createdBy: "usr_admin",
    disabledAt: null,
    disabledReason: null,
    secretSealed: sealSecret(secretsKey, Buffer.from(secret), secretAssociatedData(id)),
    delivery: { cursor: 0, headKey: null, attempts: 0, firstFailureAt: null, nextAttemptAt: null, failingSince: null, lastSuccessAt: null, lastError: null },
  };
  await store.createEndpoint(endpoint);
  await dispatcher.reload(id);
}

/** Lets the dispatcher work; fires the next timer whenever it is only waiting. Stops at `done`. */
async function runUntil(done: () => boolean | Promise<boolean>, maxTimers = 10_000): Promise<void> {
  for (let fired = 0; fired <= maxTimers; ) {
    if (await done()) return;
    const deadline = Date.now() + 2000;
    // Real time passes only for the store's worker threads to answer.
    while (clock.timers.size === 0 && !(await done())) {
      if (Date.now() > deadline) throw new Error("dispatcher idle, condition not met");
      await new Promise((r) => setTimeout(r, 2));
    }
    if (await done()) return;
    clock.fireNext();
    fired++;
  }
  throw new Error("too many timers");
}

const cursorOf = (request: OutboundRequest) => (JSON.parse(request.body) as { cursor: number }).cursor;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parley-webhooks-"));
  storage = await openPartnerStorage({ dataDir: dir });
  events = storage.events;
  store = storage.webhooks;
  clock = new TestClock();
  transport = new TestTransport(clock);
  logLines = [];
  notifier = new EventNotifier();
  dispatcher = new WebhookDispatcher({
    store,
    events,
    notifier,
    transport,
    secretsKey,
    policy,
    clock,
    logger: createLogger("warn", { write: (line: string) => void logLines.push(line) }),
  });
  await dispatcher.start();
});

afterEach(async () => {
  await dispatcher.close();
  await storage.close();
  await rm(dir, { recursive: true, force: true });
});

describe("webhook delivery", () => {
  it("signs each delivery so the receiver can verify it within the replay window", async () => {
    await appendEvents(1);
    await register();
    await runUntil(() => transport.requests.length === 1);
    const { request, at } = transport.requests[0];
    const header = request.headers["Parley-Signature"];
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(secret, request.body, header, Math.floor(at / 1000))).toBe(true);
    expect(verifySignature(secret, request.body, header, Math.floor(at / 1000) + 301)).toBe(false); // replayed too late
    expect(verifySignature(secret, `${request.body} `, header, Math.floor(at / 1000))).toBe(false); // body changed
    expect(verifySignature("whsec_other", request.body, header, Math.floor(at / 1000))).toBe(false);
    expect(request.headers["Parley-Event-Id"]).toBe((JSON.parse(request.body) as { id: string }).id);
  });

  it("retries with growing, jittered delays for at least 24 hours, parks the event, then delivers the next in order", async () => {
    await appendEvents(3);
    transport.answer = (request) => cursorOf(request) !== 1;
    await register();
    await runUntil(() => transport.requests.filter((r) => r.ok).length === 2);

    const tries = transport.requests.filter((r) => cursorOf(r.request) === 1);
    const gaps = tries.slice(1).map((t, i) => t.at - tries[i].at);
    for (const [i, gap] of gaps.entries()) {
      const step = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** i);
      expect(gap).toBeGreaterThanOrEqual(step / 2);
      expect(gap).toBeLessThanOrEqual(step);
    }
    expect(new Set(gaps.slice(0, 8)).size).toBeGreaterThan(1); // jittered, not a fixed ladder
    expect(tries.at(-1)!.at - tries[0].at).toBeGreaterThanOrEqual(24 * HOUR);
    // In order: nothing after event 1 went out before event 1 was given up on.
    expect(transport.requests.map((r) => cursorOf(r.request))).toEqual([...tries.map(() => 1), 2, 3]);

    const [letter] = await store.listDeadLetters("whk_1", 10);
    expect(letter).toMatchObject({ cursor: 1, attempts: tries.length, lastError: "HTTP 503", replayedAt: null });
    const attempts = await store.listAttempts("whk_1", 5);
    expect(attempts[0]).toMatchObject({ cursor: 3, ok: true });
    expect(attempts.find((a) => !a.ok)?.excerpt).toBe("down for maintenance");

    // Replayed from the API once the receiver is fixed.
    transport.answer = () => true;
    expect(await store.requestReplay("whk_1", null, clock.now())).toBe(1);
    await dispatcher.reload("whk_1");
    await runUntil(async () => (await store.listDeadLetters("whk_1", 10))[0].replayedAt !== null);
    expect(transport.requests.at(-1)).toMatchObject({ ok: true });
    expect(cursorOf(transport.requests.at(-1)!.request)).toBe(1);
    expect((await store.getEndpoint("whk_1"))?.delivery).toMatchObject({ cursor: 3, attempts: 0, failingSince: null });
  });

  it("reports its backlog exactly: events not yet handed off, the retried head included, and dead letters queued for replay", async () => {
    await appendEvents(3);
    transport.answer = (request) => cursorOf(request) !== 1;
    await register();
    await runUntil(() => transport.requests.length >= 2);
    // Event 1 waits for its next try; 2 and 3 wait behind it.
    expect(await dispatcher.backlog()).toBe(3);
    await appendEvents(2);
    expect(await dispatcher.backlog()).toBe(5);
    await runUntil(() => transport.requests.filter((r) => r.ok).length === 4);
    // Event 1 was parked (given up on, not owed), the others delivered (once the last answer is recorded).
    await vi.waitFor(async () => expect(await dispatcher.backlog()).toBe(0));

    expect(await store.requestReplay("whk_1", null, clock.now())).toBe(1);
    expect(await dispatcher.backlog()).toBe(1);
    transport.answer = () => true;
    await dispatcher.reload("whk_1");
    await runUntil(async () => (await store.listDeadLetters("whk_1", 10))[0].replayedAt !== null);
    expect(await dispatcher.backlog()).toBe(0);
  });

  it("disables an endpoint that fails for days and logs it as a security event", async () => {
    await appendEvents(5);
    transport.answer = () => false;
    await register();
    await runUntil(async () => (await store.getEndpoint("whk_1"))?.status === "disabled");
    const endpoint = await store.getEndpoint("whk_1");
    expect(endpoint?.disabledReason).toMatch(/no successful delivery since/);
    expect(clock.now() - transport.requests[0].at).toBeGreaterThanOrEqual(72 * HOUR);
    // A day per parked event; the third may or may not be parked at the moment it is disabled.
    expect((await store.listDeadLetters("whk_1", 10)).map((l) => l.cursor).slice(0, 2)).toEqual([1, 2]);
    const security = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.security === "webhook-endpoint-disabled");
    expect(security).toMatchObject({ endpoint: "whk_1", org: ORG });
    // Nothing more is sent to a disabled endpoint: its loop has ended, and a new event, announced
    // as the server announces it, starts nothing.
    await dispatcher.deliveryEnded("whk_1");
    const sent = transport.requests.length;
    await appendEvents(1);
    notifier.published(ORG, 6);
    await dispatcher.reload("whk_1");
    expect(clock.timers.size).toBe(0);
    expect(transport.requests.length).toBe(sent);
  });

  it("resumes the retry schedule where it was after the dispatcher restarts", async () => {
    await appendEvents(2);
    transport.answer = () => false;
    await register();
    await runUntil(() => transport.requests.length === 4);
    const before = await store.getEndpoint("whk_1");
    expect(before?.delivery).toMatchObject({ cursor: 0, attempts: 4, headKey: "event:1" });
    await dispatcher.close();

    dispatcher = new WebhookDispatcher({ store, events, notifier: new EventNotifier(), transport, secretsKey, policy, clock, logger: createLogger("silent") });
    await dispatcher.start();
    transport.answer = () => true;
    await runUntil(() => transport.requests.filter((r) => r.ok).length === 2);
    // The first attempt after the restart waited for the stored next-attempt time.
    expect(transport.requests[4].at).toBeGreaterThanOrEqual(before!.delivery.nextAttemptAt!);
    expect(transport.requests[4].request.headers["Parley-Delivery-Attempt"]).toBe("5");
    expect(transport.requests.slice(4).map((r) => cursorOf(r.request))).toEqual([1, 2]);
  });

  it("computes the documented schedule", () => {
    expect(retryDelay(1, policy, () => 0)).toBe(2500);
    expect(retryDelay(1, policy, () => 1)).toBe(5000);
    expect(retryDelay(3, policy, () => 1)).toBe(20_000);
    expect(retryDelay(40, policy, () => 1)).toBe(HOUR);
  });
});
