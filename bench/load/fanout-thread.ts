// One generator thread's share of a fan-out run: its clients (every `count`-th client, so each room
// spans all threads), the pre-built update frames of its writers, the open-loop send schedule,
// and the receive-side bookkeeping (who got which update, how late).

import { clients } from "../clients/index.ts";
import type { ProtocolClient } from "../clients/protocol-client.ts";
import { BenchClient, withConcurrency } from "./bench-client.ts";
import { UpdateCatalog } from "./catalog.ts";
import { now } from "./clock.ts";
import { type FanoutPlan, roomName } from "./plan.ts";
import { SampleBuffer } from "./samples.ts";
import type { ThreadContext } from "./thread-context.ts";
import { buildWriterUpdates, type WriterUpdates } from "./writers.ts";

/** What one thread reports; the generator adds these up. */
export interface FanoutThreadResult {
  sent: number;
  sentMeasured: number;
  expected: number;
  received: number;
  receivedMeasured: number;
  duplicates: number;
  unknown: number;
  acks: number;
  closedDuringRun: number;
  latencies: Float64Array;
  sendLags: Float64Array;
  ackLatencies: Float64Array;
  errors: string[];
  /** Joiners of this thread (plan.joinersPerRoom): attempted, failed, latest sync (ms after join start), sync times. */
  joinAttempted: number;
  joinFailed: number;
  joinLastSyncedMs: number;
  joinSyncTimes: Float64Array;
}

interface Receiver {
  client: BenchClient;
  room: number;
  ownWriter: number;
  seen: Uint8Array;
  got: number;
  expected: number;
}

const CONNECT_CONCURRENCY = 100;
const MAX_ERRORS = 10;

/** How many updates each writer sends in a run. */
export function updatesPerWriter(plan: FanoutPlan): number {
  return Math.max(1, Math.floor(((plan.warmupMs + plan.measureMs) * plan.ratePerWriter) / 1000));
}

export class FanoutThread {
  private readonly protocol: ProtocolClient;
  private readonly perWriter: number;
  private readonly period: number;
  private readonly updates: WriterUpdates;
  private readonly catalog: UpdateCatalog;
  private readonly receivers: Receiver[] = [];
  private readonly joiners: BenchClient[] = [];
  private joinStats = { attempted: 0, failed: 0, lastSyncedMs: 0, times: new SampleBuffer() };
  private readonly writerClients = new Map<number, BenchClient>();
  private readonly frames = new Map<number, Uint8Array[]>();
  private readonly ackQueues = new Map<number, { times: Float64Array; head: number; tail: number }>();
  private readonly latencies = new SampleBuffer();
  private readonly sendLags = new SampleBuffer();
  private readonly ackLatencies = new SampleBuffer();
  private readonly errors: string[] = [];
  private counts = { sent: 0, sentMeasured: 0, received: 0, receivedMeasured: 0, duplicates: 0, unknown: 0, acks: 0 };
  private closedDuringRun = 0;
  private running = false;
  // The receiver and receive time of the update being identified (avoids a closure per message).
  private current: Receiver | undefined;
  private currentAt = 0;

  constructor(
    private readonly plan: FanoutPlan,
    private readonly thread: ThreadContext,
  ) {
    this.protocol = clients[plan.server];
    this.perWriter = updatesPerWriter(plan);
    this.period = 1000 / plan.ratePerWriter;
    // Built before the clock starts; every thread builds the same updates (see writers.ts).
    this.updates = buildWriterUpdates(plan.rooms * plan.writersPerRoom, this.perWriter);
    this.catalog = new UpdateCatalog(this.updates);
  }

  /** Connects and syncs this thread's clients; returns how many failed. */
  async connect(): Promise<number> {
    const { rooms, clientsPerRoom, writersPerRoom } = this.plan;
    const mine: number[] = [];
    for (let g = this.thread.index; g < rooms * clientsPerRoom; g += this.thread.count) mine.push(g);
    const outcomes = await withConcurrency(mine.length, CONNECT_CONCURRENCY, async (k) => {
      const g = mine[k];
      const room = Math.floor(g / clientsPerRoom);
      const member = g % clientsPerRoom;
      const writer = member < writersPerRoom ? room * writersPerRoom + member : -1;
      const port = this.plan.ports ? this.plan.ports[member % this.plan.ports.length] : this.plan.port;
      const client = new BenchClient(this.protocol, port, roomName(this.plan, room), this.plan.auth);
      await client.synced;
      this.addClient(client, room, writer);
    });
    const failures = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
    for (const failure of failures.slice(0, MAX_ERRORS)) this.error(`connect: ${(failure.reason as Error).message}`);
    return failures.length;
  }

  private addClient(client: BenchClient, room: number, writer: number): void {
    const othersWriting = this.plan.writersPerRoom - (writer >= 0 ? 1 : 0);
    const receiver: Receiver = {
      client,
      room,
      ownWriter: writer,
      seen: new Uint8Array(this.plan.writersPerRoom * this.perWriter),
      got: 0,
      expected: othersWriting * this.perWriter,
    };
    this.receivers.push(receiver);
    client.events = {
      update: (update, at) => {
        this.current = receiver;
        this.currentAt = at;
        if (this.catalog.identify(update, this.visit) === 0) this.counts.unknown++;
      },
      ack: (at) => this.onAck(writer, at),
      error: (message) => this.error(message),
      closed: (code) => {
        if (this.running) {
          this.closedDuringRun++;
          this.error(`socket closed by server during run: ${code}`);
        }
      },
    };
    if (writer >= 0) {
      this.writerClients.set(writer, client);
      const name = roomName(this.plan, room);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < this.perWriter; i++) {
        frames.push(this.protocol.encodeUpdate(name, this.updates.updates[writer * this.perWriter + i]));
      }
      this.frames.set(writer, frames);
      this.ackQueues.set(writer, { times: new Float64Array(this.perWriter), head: 0, tail: 0 });
    }
  }

  private readonly visit = (writer: number, index: number): void => {
    const receiver = this.current!;
    const local = writer - receiver.room * this.plan.writersPerRoom;
    if (local < 0 || local >= this.plan.writersPerRoom) {
      this.counts.unknown++;
      return;
    }
    if (writer === receiver.ownWriter) return; // the server echoed our own update back
    const slot = local * this.perWriter + index;
    if (receiver.seen[slot] === 1) {
      this.counts.duplicates++;
      return;
    }
    const sentMicros = Atomics.load(this.thread.sendTimes, writer * this.perWriter + index);
    if (sentMicros === 0) {
      this.counts.unknown++;
      return;
    }
    receiver.seen[slot] = 1;
    receiver.got++;
    this.counts.received++;
    if (index >= this.firstMeasured(writer)) {
      this.counts.receivedMeasured++;
      this.latencies.push(this.currentAt - (this.thread.epoch + sentMicros / 1000));
    }
  };

  private onAck(writer: number, at: number): void {
    const queue = this.ackQueues.get(writer);
    if (!queue || queue.head >= queue.tail) {
      this.error("ack for an update that was not sent");
      return;
    }
    this.counts.acks++;
    this.ackLatencies.push(at - queue.times[queue.head++]);
  }

  private phase(writer: number): number {
    return ((writer * 0.618_033_988_749_895) % 1) * this.period;
  }

  private firstMeasured(writer: number): number {
    return Math.max(0, Math.ceil((this.plan.warmupMs - this.phase(writer)) / this.period));
  }

  /** Sends on schedule from `t0` (process clock), then drains; resolves with this thread's counts. */
  async run(t0: number): Promise<FanoutThreadResult> {
    this.running = true;
    const schedule = this.buildSchedule();
    const joining = this.joinDuringLoad(t0 + this.plan.warmupMs);
    await this.sendAll(t0, schedule);
    await joining;
    await this.drain(t0 + this.plan.warmupMs + this.plan.measureMs + this.plan.drainMs);
    this.running = false;
    return {
      ...this.counts,
      expected: this.counts.sent * (this.plan.clientsPerRoom - 1),
      closedDuringRun: this.closedDuringRun,
      latencies: this.latencies.toArray(),
      sendLags: this.sendLags.toArray(),
      ackLatencies: this.ackLatencies.toArray(),
      errors: this.errors,
      joinAttempted: this.joinStats.attempted,
      joinFailed: this.joinStats.failed,
      joinLastSyncedMs: this.joinStats.lastSyncedMs,
      joinSyncTimes: this.joinStats.times.toArray(),
    };
  }

  /**
   * Joins under load: at `at` (the measured window's start) this thread's share of the joiners
   * open their sockets all at once, each into its room; each one's open → synced time is kept.
   */
  private async joinDuringLoad(at: number): Promise<void> {
    const perRoom = this.plan.joinersPerRoom ?? 0;
    if (perRoom <= 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - now())));
    const mine: number[] = [];
    for (let g = this.thread.index; g < this.plan.rooms * perRoom; g += this.thread.count) mine.push(g);
    const started = now();
    this.joinStats.attempted = mine.length;
    await Promise.all(
      mine.map(async (g) => {
        const room = Math.floor(g / perRoom);
        const port = this.plan.ports ? this.plan.ports[g % this.plan.ports.length] : this.plan.port;
        const opened = now();
        const client = new BenchClient(this.protocol, port, roomName(this.plan, room), this.plan.auth, 20_000);
        this.joiners.push(client);
        try {
          await client.synced;
          const syncedAt = now();
          this.joinStats.times.push(syncedAt - opened);
          this.joinStats.lastSyncedMs = Math.max(this.joinStats.lastSyncedMs, syncedAt - started);
        } catch (error) {
          this.joinStats.failed++;
          this.error(`join under load: ${(error as Error).message}`);
        }
      }),
    );
  }

  /** Every send of this thread's writers, ordered by scheduled offset from t0. */
  private buildSchedule(): { offset: Float64Array; writer: Int32Array; index: Int32Array } {
    const writers = [...this.writerClients.keys()];
    const total = writers.length * this.perWriter;
    const order = Array.from({ length: total }, (_, k) => k);
    const offsetOf = (k: number) => this.phase(writers[k % writers.length]) + Math.floor(k / writers.length) * this.period;
    order.sort((a, b) => offsetOf(a) - offsetOf(b));
    const schedule = { offset: new Float64Array(total), writer: new Int32Array(total), index: new Int32Array(total) };
    order.forEach((k, n) => {
      schedule.offset[n] = offsetOf(k);
      schedule.writer[n] = writers[k % writers.length];
      schedule.index[n] = Math.floor(k / writers.length);
    });
    return schedule;
  }

  private sendAll(t0: number, schedule: ReturnType<FanoutThread["buildSchedule"]>): Promise<void> {
    const { offset, writer, index } = schedule;
    let next = 0;
    return new Promise((resolve) => {
      const pump = () => {
        let at = now();
        while (next < offset.length && t0 + offset[next] <= at) {
          this.sendOne(writer[next], index[next], t0 + offset[next], at);
          next++;
          at = now();
        }
        if (next < offset.length) setTimeout(pump, Math.max(0, t0 + offset[next] - now()));
        else resolve();
      };
      setTimeout(pump, Math.max(0, t0 - now()));
    });
  }

  private sendOne(writer: number, index: number, scheduledAt: number, at: number): void {
    const client = this.writerClients.get(writer)!;
    if (!client.open) return;
    Atomics.store(this.thread.sendTimes, writer * this.perWriter + index, Math.max(1, Math.round((at - this.thread.epoch) * 1000)));
    const queue = this.ackQueues.get(writer)!;
    queue.times[queue.tail++] = at;
    client.send(this.frames.get(writer)![index]);
    this.counts.sent++;
    if (index >= this.firstMeasured(writer)) {
      this.counts.sentMeasured++;
      this.sendLags.push(at - scheduledAt);
    }
  }

  /** Waits until every receiver has everything (and every ack is in), or until `deadline`. */
  private drain(deadline: number): Promise<void> {
    const complete = () =>
      this.receivers.every((r) => r.got >= r.expected) && (!this.plan.acks || this.counts.acks >= this.counts.sent);
    return new Promise((resolve) => {
      const check = () => {
        if (complete() || now() >= deadline) resolve();
        else setTimeout(check, 20);
      };
      check();
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.receivers.map((r) => r.client.close()), ...this.joiners.map((client) => client.close())]);
  }

  private error(message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(message);
  }
}
