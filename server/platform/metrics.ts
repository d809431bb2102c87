// The server's Prometheus metrics (prom-client), in one registry per server instance so several
// servers in one process (tests) do not mix. Modules get small hooks (a counter to increment, a
// function to call), never this whole object; gauges of state that already exists (connections,
// open conversations, webhook backlog) are read at scrape time instead of being kept in step.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Hooks the socket routes call for every frame. */
export interface SocketTraffic {
  received(dialect: string): void;
  sent(dialect: string, frames: number): void;
}

/** Hooks the group committer calls for every transaction. */
export interface CommitObserver {
  committed(batchSize: number, seconds: number): void;
  failed(batchSize: number): void;
}

/** Hooks the ordered delivery calls. */
export interface DeliveryObserver {
  /** An update reached local subscribers `lagMs` after it was offered (0 unless it waited for a gap). */
  delivered(lagMs: number): void;
  /** A gap was filled from the store with this many updates. */
  recovered(updates: number): void;
  /** This node's commit reached its local subscribers `ms` after the commit. */
  deliveredLocally(ms: number): void;
  /** Another node's commit reached local subscribers `ms` after that node published it (two clocks). */
  deliveredFromRemote(ms: number): void;
}

/** What the scrape reads from the running server. */
export interface MetricsSources {
  connections(): { parley: number; yjs: number; authenticated: number };
  openConversations(): number;
  webhookBacklog?(): Promise<number>;
  compactionsInFlight?(): number;
}

/** Local fan-out is in-process: tenths of a millisecond matter. */
const LOCAL_DELAY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Remote fan-out crosses Redis (and two clocks, read in whole milliseconds). */
const REMOTE_DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** A counter by dialect whose increments wait in `pending` until a scrape collects them. */
function frameCounter(registry: Registry, name: string, help: string, pending: Map<string, number>): Counter<"dialect"> {
  return new Counter({
    name,
    help,
    labelNames: ["dialect"],
    registers: [registry],
    collect() {
      for (const [dialect, frames] of pending) if (frames > 0) this.inc({ dialect }, frames);
      pending.clear();
    },
  });
}

/** Every metric the server exposes. */
export class ServerMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | null = null;

  /**
   * Frames are counted in plain numbers on the hot path and added to the counters when they are
   * scraped: a labelled inc() hashes its labels, once per frame received and per publish.
   */
  private readonly frameCounts = { in: new Map<string, number>(), out: new Map<string, number>() };
  readonly framesIn = frameCounter(this.registry, "parley_frames_received_total", "WebSocket frames received", this.frameCounts.in);
  readonly framesOut = frameCounter(
    this.registry,
    "parley_frames_sent_total",
    "WebSocket frames sent (a broadcast counts once per subscriber)",
    this.frameCounts.out,
  );
  readonly commits = new Counter({ name: "parley_commits_total", help: "Group-commit transactions", labelNames: ["outcome"], registers: [this.registry] });
  readonly committedUpdates = new Counter({ name: "parley_committed_updates_total", help: "Updates made durable", registers: [this.registry] });
  readonly commitSeconds = new Histogram({
    name: "parley_commit_duration_seconds",
    help: "Time one group-commit transaction took",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "parley_group_commit_batch_size",
    help: "Updates carried by one group-commit transaction",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly fanOutLag = new Histogram({
    name: "parley_fanout_lag_seconds",
    help: "Time a committed update waited (behind a sequence gap) before it reached local subscribers",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });
  /** Commit to local delivery: the write path's own fan-out, no bus in between. */
  readonly fanOutLocalSeconds = new Histogram({ name: "parley_fanout_local_delay_seconds", help: "Time from an update's commit on this node to its delivery to this node's subscribers", buckets: LOCAL_DELAY_BUCKETS, registers: [this.registry] });
  /** Publish to delivery on another node: Redis and the receiving node; the publisher's wall clock, so clock skew adds in. */
  readonly fanOutRemoteSeconds = new Histogram({ name: "parley_fanout_remote_delay_seconds", help: "Time from an update's publish on the node that committed it to its delivery to this node's subscribers (the two nodes' clock skew adds in)", buckets: REMOTE_DELAY_BUCKETS, registers: [this.registry] });
  readonly writesShed = new Counter({ name: "parley_writes_shed_total", help: "Writes refused because the node was overloaded (load shedding)", labelNames: ["reason"], registers: [this.registry] });
  readonly busGapsRecovered = new Counter({ name: "parley_bus_gap_updates_recovered_total", help: "Updates missing from the bus and read from the store", registers: [this.registry] });
  readonly storeErrors = new Counter({ name: "parley_store_errors_total", help: "Store operations that failed", labelNames: ["operation"], registers: [this.registry] });
  readonly busErrors = new Counter({ name: "parley_bus_errors_total", help: "Bus connection losses and dropped bus messages", labelNames: ["kind"], registers: [this.registry] });
  readonly webhookDeliveries = new Counter({ name: "parley_webhook_deliveries_total", help: "Webhook delivery attempts by outcome", labelNames: ["outcome"], registers: [this.registry] });
  readonly signInFailures = new Counter({ name: "parley_sign_in_failures_total", help: "Refused sign-ins by reason", labelNames: ["reason"], registers: [this.registry] });
  readonly backupRuns = new Counter({
    name: "parley_scheduled_backups_total",
    help: "Scheduled backups and restore drills by kind (backup, drill) and outcome (ok, failed)",
    labelNames: ["kind", "outcome"],
    registers: [this.registry],
  });
  readonly securityNotices = new Counter({ name: "parley_security_notices_total", help: "Security notices raised, by kind", labelNames: ["notice"], registers: [this.registry] });
  readonly socketAuthFailures = new Counter({ name: "parley_socket_auth_failures_total", help: "Socket authentications refused", labelNames: ["dialect"], registers: [this.registry] });

  constructor() {
    const sources = () => this.sources;
    new Gauge({
      name: "parley_connections",
      help: "Open WebSocket connections",
      labelNames: ["dialect"],
      registers: [this.registry],
      collect() {
        const counts = sources()?.connections();
        this.set({ dialect: "parley" }, counts?.parley ?? 0);
        this.set({ dialect: "yjs" }, counts?.yjs ?? 0);
      },
    });
    new Gauge({
      name: "parley_authenticated_sessions",
      help: "Open connections that completed authentication",
      registers: [this.registry],
      collect() {
        this.set(sources()?.connections().authenticated ?? 0);
      },
    });
    new Gauge({
      name: "parley_open_conversations",
      help: "Conversations with at least one local member",
      registers: [this.registry],
      collect() {
        this.set(sources()?.openConversations() ?? 0);
      },
    });
    new Gauge({
      name: "parley_webhook_backlog",
      // Exact, from the stores: the events each endpoint has not yet had (delivered or parked), read
      // ahead or not. One series: an organisation label would grow without bound.
      help: "Webhook deliveries owed by the enabled endpoints this node delivers: events after each endpoint's cursor (its head item too, while it waits for a retry) and dead letters queued for replay",
      registers: [this.registry],
      async collect() {
        const backlog = sources()?.webhookBacklog;
        this.set(backlog ? await backlog().catch(() => Number.NaN) : 0);
      },
    });
    new Gauge({
      name: "parley_compactions_in_flight",
      help: "Snapshot compactions this node is running (their snapshot entry not yet committed)",
      registers: [this.registry],
      collect() {
        this.set(sources()?.compactionsInFlight?.() ?? 0);
      },
    });
    // Event-loop lag (nodejs_eventloop_lag_*), heap, GC, handles, CPU: prom-client's defaults.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }

  /** Wires the scrape-time readings (once the parts they read exist). */
  observe(sources: MetricsSources): void {
    this.sources = sources;
  }

  readonly traffic: SocketTraffic = {
    received: (dialect) => {
      const counts = this.frameCounts.in;
      counts.set(dialect, (counts.get(dialect) ?? 0) + 1);
    },
    sent: (dialect, frames) => {
      const counts = this.frameCounts.out;
      counts.set(dialect, (counts.get(dialect) ?? 0) + frames);
    },
  };

  readonly commitObserver: CommitObserver = {
    committed: (batchSize, seconds) => {
      this.commits.inc({ outcome: "committed" });
      this.committedUpdates.inc(batchSize);
      this.batchSize.observe(batchSize);
      this.commitSeconds.observe(seconds);
    },
    failed: () => {
      this.commits.inc({ outcome: "failed" });
      this.storeErrors.inc({ operation: "commit" });
    },
  };

  // Observed once per delivered update: through an unlabelled child, whose observe() reuses one
  // closure and labels object (Histogram.observe builds both on every call).
  private readonly fanOutLagChild = this.fanOutLag.labels();
  private readonly fanOutLocalChild = this.fanOutLocalSeconds.labels();

  readonly deliveryObserver: DeliveryObserver = {
    delivered: (lagMs) => this.fanOutLagChild.observe(lagMs / 1000),
    recovered: (updates) => this.busGapsRecovered.inc(updates),
    deliveredLocally: (ms) => this.fanOutLocalChild.observe(ms / 1000),
    // A skewed clock can put the publish after the delivery: counted as no delay, not negative.
    deliveredFromRemote: (ms) => this.fanOutRemoteSeconds.observe(Math.max(0, ms) / 1000),
  };

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
