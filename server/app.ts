// The composition root: configuration → keys → store → write path → realtime → HTTP, wired once.
// Nothing below this file reads the environment or reaches for globals; tests start a real server
// through startServer() on an ephemeral port with their own data directory.

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { CloseCode } from "../protocol/index.ts";
import { type Audit, openAudit } from "./audit/audit-module.ts";
import { auditRoutes } from "./audit/audit-routes.ts";
import { loadOrCreateKeys, type ServerKeys } from "./crypto/keys.ts";
import { loadMasterKeys } from "./crypto/master-key.ts";
import { backupMasterKeys } from "./backup/backup-keys.ts";
import { BackupScheduler } from "./backup/backup-scheduler.ts";
import { describeInterruptedRestore, interruptedRestore } from "./backup/restore-backup.ts";
import { holdServerLock } from "./backup/server-lock.ts";
import type { Bus } from "./bus/bus.ts";
import { openBus } from "./bus/open-bus.ts";
import { type Clock, monotonicClock, systemClock } from "./platform/clock.ts";
import type { Config } from "./platform/config.ts";
import { withDocumentEvents } from "./events/document-events.ts";
import { wakeAcrossNodes } from "./events/event-wake.ts";
import { type Events, openEvents, RECHECK_MS as EVENT_RECHECK_MS } from "./events/events-module.ts";
import { historyRoutes } from "./history/history-routes.ts";
import type { WorkerThread } from "./sql/worker-service.ts";
import { registerHealthRoutes } from "./http/health-routes.ts";
import { listenForMetrics, registerMetricsRoute } from "./http/metrics-route.ts";
import { ServerMetrics } from "./platform/metrics.ts";
import type { RouteDefinition } from "./http/route.ts";
import { registerRoutes } from "./http/router.ts";
import { metaRoutes } from "./http/meta-routes.ts";
import { registerWebApp } from "./http/web-app-files.ts";
import { type Identity, openIdentity } from "./identity/identity-module.ts";
import type { AccessChange } from "./bus/access-events.ts";
import { type Lifecycle, openLifecycle } from "./lifecycle/lifecycle-module.ts";
import { GroupCommitter } from "./writes/group-committer.ts";
import { WriteAdmission } from "./writes/write-admission.ts";
import { WritePath } from "./writes/write-path.ts";
import { ConnectionLimits } from "./limits/connection-limits.ts";
import { openLimiterBackend } from "./limits/limiter-backend.ts";
import { RequestLimits } from "./limits/request-limits.ts";
import type { Logger } from "./platform/logger.ts";
import { backupFailureNotice } from "./notices/notice-policy.ts";
import { noticeRoutes } from "./notices/notice-routes.ts";
import { SecurityNotices } from "./notices/security-notices.ts";
import { AccessEnforcer } from "./realtime/access-enforcer.ts";
import { awarenessIdentity } from "./realtime/awareness-claims.ts";
import { ClusterBroadcaster } from "./realtime/cluster-broadcaster.ts";
import { ChannelRegistry } from "./realtime/conversation-channel.ts";
import { SocketEventStreams } from "./realtime/socket-event-streams.ts";
import { DocumentCache } from "./documents/document-cache.ts";
import { registerParleyRoute } from "./realtime/parley-route.ts";
import { RealtimeHub } from "./realtime/realtime-hub.ts";
import { CommitFanOut } from "./realtime/commit-fan-out.ts";
import { startBackgroundLoop } from "./platform/background-loop.ts";
import { StartupRefusal } from "./platform/startup-refusal.ts";
import { AcknowledgedHeads, findLostWrites } from "./store/acknowledged-heads.ts";
import { sweepSessions } from "./realtime/session-sweeper.ts";
import { registerYjsRoute } from "./realtime/yjs-route.ts";
import { openPostgresStore } from "./store/postgres/postgres-store.ts";
import { openSqliteStore } from "./store/sqlite/sqlite-store.ts";
import type { Store } from "./store/store.ts";
import { OpenedResources } from "./platform/opened-resources.ts";
import { loadUws } from "./platform/uws.ts";
import { forgetPartnerCopies, openPartnerStorage } from "./webhooks/partner-storage.ts";
import { openWebhooks, type WebhookOptions, type Webhooks } from "./webhooks/webhooks-module.ts";

/** The audit chain of server-wide events (scheduled backups and drills): `parley audit verify --org parley-system`. */
export const SYSTEM_AUDIT_CHAIN = "parley-system";

/** A running server. */
export interface ParleyServer {
  /** The port actually listened on (useful with PORT=0). */
  readonly port: number;
  /** The port of the separate metrics listener (PARLEY_METRICS_ADDRESS), or null. */
  readonly metricsPort: number | null;
  /** Prometheus metrics (GET /metrics). */
  readonly metrics: ServerMetrics;
  readonly config: Config;
  readonly keys: ServerKeys;
  readonly store: Store;
  readonly bus: Bus;
  readonly hub: RealtimeHub;
  readonly identity: Identity;
  /** Org audit chains (`audit.recorder.recordOrgEvent`) and signed checkpoints. */
  readonly audit: Audit;
  /** Partner events: store, recorder, streams. */
  readonly events: Events;
  /** Deletion (ledger, replay), legal holds and the retention sweep. */
  readonly lifecycle: Lifecycle;
  readonly webhooks: Webhooks;
  /** Scheduled backups and drills (null unless PARLEY_BACKUP_DIR is set). */
  readonly backups: BackupScheduler | null;
  /** The worker threads (SQLite backends): one that died fails /healthz, as it is never restarted in-process. */
  readonly workers: readonly WorkerThread[];
  /** Graceful shutdown: stop accepting, flush commits, close sockets with 1012, close the store. */
  close(): Promise<void>;
}

/** Test and embedding hooks. */
export interface StartOptions {
  /** The server's one wall clock (platform/clock.ts): expiry, retention, timestamps; tests inject one. */
  now?: Clock;
  /** Webhook transport and clock (tests); the real ones by default. */
  webhooks?: WebhookOptions;
}

/** With several nodes, how often followers of partner event streams look for other nodes' appends (the bus is faster). */
const EVENT_POLL_MS = 1000;

/** The order a start that failed closes what it opened in: the order `close()` stops them in. */
const CLOSE_ORDER = [
  "background loops",
  "acknowledged heads",
  "app",
  "webhooks",
  "metrics listener",
  "event wake",
  "events",
  "partner storage",
  "bus",
  "limiters",
  "store",
  "identity",
  "audit",
  "server lock",
] as const;

/** Starts a server with the given configuration; a start that fails closes what it had opened. */
export async function startServer(config: Config, logger: Logger, options: StartOptions = {}): Promise<ParleyServer> {
  const opened = new OpenedResources(logger);
  try {
    return await startOpening(config, logger, options, opened);
  } catch (error) {
    await opened.closeAll(CLOSE_ORDER);
    throw error;
  }
}

async function startOpening(config: Config, logger: Logger, options: StartOptions, opened: OpenedResources): Promise<ParleyServer> {
  // One clock for what time decides (expiry, retention, events); tests pass their own as options.now.
  const clock: Clock = options.now ?? systemClock;
  const { uws, module: uwsModule } = loadUws();
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Announces this server in the data directory, so `parley restore` refuses to run under it.
  const serverLock = await holdServerLock(config.dataDir, clock);
  opened.add("server lock", () => serverLock.release());
  // A restore killed between its first and last rename left old and restored databases side by
  // side: serving that mix is never right; `parley restore --resume` finishes it.
  const interrupted = await interruptedRestore(config.dataDir);
  if (interrupted) throw new StartupRefusal(describeInterruptedRestore(config.dataDir, interrupted));
  const keys = await loadOrCreateKeys(config.keysDir);
  const master = await loadMasterKeys({ ...config.masterKey, keysDir: config.keysDir });
  // Several nodes share Postgres (DATABASE_URL); one node alone keeps SQLite in its data directory.
  const postgres = config.store.databaseUrl
    ? await openPostgresStore({ connectionString: config.store.databaseUrl, auditKey: keys.auditKey, masterKeys: master.ring, now: clock })
    : null;
  if (postgres) opened.add("store", () => postgres.close());
  if (postgres) {
    // Acknowledged means committed by Postgres; with these off, Postgres itself may lose it in a crash.
    const durability = await postgres.durabilitySettings();
    if (durability.fsync !== "on" || durability.synchronousCommit === "off") {
      logger.warn(
        { fsync: durability.fsync, synchronousCommit: durability.synchronousCommit },
        "Postgres may lose acknowledged writes in a crash (fsync or synchronous_commit is off): turn both on for production",
      );
    }
  }
  const store: Store = postgres
    ? postgres
    : await openSqliteStore({
        path: path.join(config.dataDir, "parley.db"),
        auditKey: keys.auditKey,
        masterKeys: master.ring,
        synchronous: config.store.sqliteSynchronous,
        now: clock,
      });
  opened.add("store", () => store.close());
  // Only now, once the store accepted it (no data keys wrapped by another key), a generated master key is written.
  await master.persist();

  const app = uws.App();
  opened.add("app", () => (app as unknown as { close(): void }).close());
  const metrics = new ServerMetrics();
  // Loss made loud (the embedded store; Postgres keeps its own durability): the heads of what is
  // acknowledged are pinned outside the log, each commit's before its acks (store/acknowledged-heads.ts).
  const ackedHeads = config.store.databaseUrl
    ? null
    : new AcknowledgedHeads({
        dataDir: config.dataDir,
        store,
        // The store's clock: pins compare with the times the store wrote.
        now: clock,
        onError: (error) => logger.error({ err: error }, "could not pin the acknowledged heads"),
      });
  const committer = new GroupCommitter(store, {
    maxBatch: config.store.maxBatch,
    windowMs: config.store.commitWindowMs,
    observer: metrics.commitObserver,
    beforeAck: ackedHeads ? (committed) => ackedHeads.pinCommitted(committed) : undefined,
  });
  const cache = new DocumentCache(store, config.cacheBytes);
  const bus = openBus(config.bus, logger, clock, (kind) => metrics.busErrors.inc({ kind }));
  opened.add("bus", () => bus.close());
  // An awareness id someone wrote the document with is theirs (restores name their original authors, not a claim).
  const channels = new ChannelRegistry((conversation, clientId) => {
    const owner = cache.withIndexNow(conversation)?.index.ownerOf(clientId);
    return owner && !owner.restore ? awarenessIdentity(owner) : undefined;
  });
  const broadcaster = new ClusterBroadcaster(app, bus, channels, metrics.traffic);
  // Every commit, this node's or another's, reaches the cache and local subscribers in order here.
  const delivery = new CommitFanOut({ bus, store, cache, broadcaster, logger, gapGraceMs: config.bus.gapGraceMs, observer: metrics.deliveryObserver, now: clock });
  // Partner events: opened before identity, which records through it.
  const partnerStorage = await openPartnerStorage({ dataDir: config.dataDir, databaseUrl: config.store.databaseUrl });
  opened.add("partner storage", () => partnerStorage.close());
  const events = openEvents(config, { store: partnerStorage.events, log: store, cache, logger, now: clock });
  opened.add("events", () => events.close());
  // Several nodes append to one event store: followers here must hear of other nodes' appends.
  const stopEventWake = partnerStorage.shared
    ? wakeAcrossNodes({ notifier: events.notifier, bus, store: partnerStorage.events, pollMs: EVENT_POLL_MS, logger })
    : () => {};
  opened.add("event wake", stopEventWake);
  const writePath = new WritePath({
    store,
    committer,
    cache,
    fanOut: withDocumentEvents(delivery, events.documents),
    logger,
    maxUpdateBytes: config.limits.maxUpdateBytes,
    documentLimits: config.limits.document,
    compactAfterUpdates: config.store.compactAfterUpdates,
    onCompacted: (conversation, seq) => delivery.compacted(conversation, seq),
  });
  const audit = await openAudit(config, { keys, logger, now: clock, store });
  opened.add("audit", () => audit.close());
  // Abuse limits: rates count in Redis when the nodes share one (so they hold across nodes).
  const limiters = openLimiterBackend({ redisUrl: config.bus.redisUrl, keyPrefix: config.bus.channelPrefix });
  opened.add("limiters", () => limiters.close());
  if (!(await limiters.ready(5000))) logger.warn({ security: "limits-degraded" }, "Redis did not answer: rate limits count per node until it does");
  const requestLimits = new RequestLimits(limiters, config.rateLimits);
  const connections = new ConnectionLimits(config.limits.maxConnectionsPerAddress);
  const identity = await openIdentity(config, {
    keys,
    masterKeys: master.ring,
    logger,
    writePath,
    cache,
    lastActivity: (conversations) => store.lastActivity(conversations),
    now: clock,
    partnerEvents: events.recorder,
    orgAudit: audit.recorder,
    limiters,
  });
  opened.add("identity", () => identity.close());
  // Deletion and retention. The ledger is replayed now, before the server accepts connections, so
  // nothing a restored backup brought back is ever served.
  const lifecycle = await openLifecycle(config, {
    directory: identity.services.directory,
    store,
    accessEvents: identity.events,
    services: identity.services,
    evict: (conversation) => cache.evict(conversation),
    forgetPartnerEvents: async (conversation, org) => {
      if (org === undefined) {
        await events.documents.forget(conversation);
        ackedHeads?.forget(conversation);
      }
      await forgetPartnerCopies(partnerStorage, conversation, clock(), org);
    },
    recordOrgEvent: (org, event) => audit.recorder.recordOrgEvent(org, event),
    auditedChange: (op, args, org, event) => audit.recorder.recordWith(identity.services.directory, op, args, org, event),
    logger,
    now: clock,
  });
  await lifecycle.replayDeletionLedger();
  // Loss made loud (the embedded store; Postgres keeps its own durability): a log behind the heads
  // pinned as acknowledged refuses to start, naming what is missing (store/acknowledged-heads.ts).
  if (ackedHeads) {
    const destroyed = lifecycle.ledger.list().filter((entry) => entry.subject === "conversation").map((entry) => entry.id);
    const lost = await findLostWrites(config.dataDir, store, destroyed);
    if (lost.length > 0) {
      const named = lost.map((l) => `${l.conversation} (entries ${l.from}-${l.through})`).join(", ");
      throw new StartupRefusal(
        `acknowledged writes are missing from the log: ${named}. Restore them (parley restore), or, to serve without them, remove ${ackedHeads.files.join(" and ")} and start again`,
      );
    }
    await ackedHeads.start();
    opened.add("acknowledged heads", () => ackedHeads.stop());
  }
  // Security notices: raised from the organisation audit events as they are recorded, kept once
  // each as `security.notice` partner events, e-mailed to owners and admins.
  const notices = new SecurityNotices({
    store: events.store,
    notifier: events.notifier,
    directory: identity.services.directory,
    mailer: identity.services.mailer,
    logger,
    now: clock,
    fingerprintKey: keys.auditKey,
    onRaised: (notice) => metrics.securityNotices.inc({ notice }),
  });
  audit.recorder.observe((org, event) => notices.observe(org, event));
  identity.services.notices = notices;
  // One authentication path: the router, the event stream and the sockets resolve credentials alike.
  const principals = identity.principals;
  const eventStreams = await events.start({
    app,
    directory: identity.services.directory,
    principals,
    allowedOrigins: config.allowedOrigins,
    proxyTrust: config.http.proxyTrust,
    connections,
    requestLimits,
  });
  // Partner events over the Parley socket: built here, not in events/, because realtime/ sits above events/.
  const socketEvents = new SocketEventStreams({
    store: events.store,
    notifier: events.notifier,
    access: eventStreams.access,
    logger: logger.child({ component: "events" }),
    options: { maxPerSocket: 8, maxBufferedBytes: 1024 * 1024, recheckMs: EVENT_RECHECK_MS },
  });
  const webhooks = await openWebhooks(
    config,
    {
      store: partnerStorage.webhooks,
      events: events.store,
      notifier: events.notifier,
      secretsKey: identity.services.secretsKey,
      logger,
      now: clock,
      claims: partnerStorage.shared ? partnerStorage.claims : undefined,
      onOutcome: (outcome) => metrics.webhookDeliveries.inc({ outcome }),
    },
    options.webhooks,
  );
  opened.add("webhooks", () => webhooks.close());
  const admission = new WriteAdmission(config.limits.shedding, () => committer.pending, (share, utilisation) => {
    const fields = { shedShare: Number(share.toFixed(2)), eventLoopUtilisation: Number(utilisation.toFixed(3)) };
    if (share > 0) logger.warn(fields, "overloaded: refusing writes from a share of the writers");
    else logger.info(fields, "no longer overloaded: admitting every write");
  });
  admission.start();
  opened.add("load shedding", () => admission.stop());
  const hub = new RealtimeHub({
    channels,
    admission,
    onShed: (reason) => metrics.writesShed.inc({ reason }),
    resolveRole: identity.resolveRole,
    cache,
    writePath,
    broadcaster,
    logger,
    maxConversationsPerSocket: config.limits.maxConversationsPerSocket,
    maxAwarenessBytes: config.limits.maxAwarenessBytes,
    maxCatchUpBytes: config.limits.maxFrameBytes,
  });
  hub.channels.observe(delivery);
  let shuttingDown = false;
  const isMember = async (orgId: string, userId: string) => (await identity.services.directory.getMembership(orgId, userId)) !== null;
  const enforcer = new AccessEnforcer(hub, identity.resolveRole, isMember, logger);
  // Access changes act on this node's sockets at once and travel to the other nodes' too.
  // Partner events go to whoever takes part: the deriver's cached audience goes with any change.
  const forgetAudience = (change: AccessChange) => {
    if (change.kind === "conversation-access-changed") events.recorder.forgetAudience(change.conversationId);
  };
  identity.events.on((change) => {
    enforcer.apply(change);
    forgetAudience(change);
    bus.publishAccess(change);
  });
  bus.onAccess((change) => {
    enforcer.apply(change);
    forgetAudience(change);
  });
  // Safety nets for changes that emit no event here: support grants revoked by the CLI and API
  // keys revoked (checked every 2 s; they are few) and changes lost between nodes (every socket, every 30 s).
  let revalidations = 0;
  const revalidator = startBackgroundLoop({
    name: "access revalidation",
    everyMs: 2000,
    logger,
    run: () => {
      const everyone = ++revalidations % 15 === 0 && bus.shared;
      return enforcer.revalidate(identity.stillValid, everyone ? undefined : (who) => who.kind === "support" || who.kind === "apiKey");
    },
  });
  opened.add("background loops", () => revalidator.stop());
  const routeDeps = {
    hub,
    authenticate: identity.authenticate,
    resolveRole: identity.resolveRole,
    limits: config.limits,
    allowedOrigins: config.allowedOrigins,
    proxyTrust: config.http.proxyTrust,
    logger,
    connections,
    traffic: metrics.traffic,
  };
  // Partner systems join conversations and follow events over the socket with their API key.
  registerParleyRoute(app, { ...routeDeps, events: socketEvents, recheckAccess: (session, conversation) => enforcer.recheck(session, conversation) });
  registerYjsRoute(app, routeDeps);
  const routes: RouteDefinition[] = [
    ...identity.routes,
    ...auditRoutes({ services: identity.services, store, audit }),
    ...historyRoutes({ services: identity.services, store }),
    ...lifecycle.routes,
    ...eventStreams.routes,
    ...webhooks.routes,
    ...noticeRoutes(notices),
    ...metaRoutes(keys, () => routes, config.identity.publicUrl),
  ];
  registerRoutes(app, routes, {
    allowedOrigins: config.allowedOrigins,
    maxBodyBytes: config.http.maxBodyBytes,
    proxyTrust: config.http.proxyTrust,
    logger,
    principals,
    requestLimits,
    onResponse: (route, status, code) => {
      if (route.path === "/v1/auth/login" && status >= 400) metrics.signInFailures.inc({ reason: code === undefined ? String(status) : String(code) });
    },
  });
  metrics.observe({
    connections: () => {
      let parley = 0;
      let authenticated = 0;
      for (const session of hub.sessions) {
        if (session.dialect === "parley") parley++;
        if (session.phase === "ready") authenticated++;
      }
      return { parley, yjs: hub.sessions.size - parley, authenticated };
    },
    openConversations: () => channels.size,
    webhookBacklog: async () => webhooks.dispatcher.backlog(),
    compactionsInFlight: () => writePath.compactionsInFlight(),
  });
  registerMetricsRoute(app, { metrics, token: config.metrics.token, logger });
  const metricsListener = config.metrics.address ? await listenForMetrics(config.metrics.address, metrics, logger) : null;
  if (metricsListener) opened.add("metrics listener", () => metricsListener.close());
  registerWebApp(app, { dir: config.http.webAppDir });
  // Scheduled backups with rotation and restore drills (on Postgres: one node per interval, the drill into a scratch database): results to the
  // system audit chain, the log, /readyz detail, and a security notice to every organisation on failure.
  const backups = config.backups
    ? new BackupScheduler({
        config,
        settings: config.backups,
        masterKeys: async () => backupMasterKeys(config),
        auditKey: keys.auditKey,
        logger,
        now: clock,
        onResult: async (result) => {
          metrics.backupRuns.inc({ kind: result.kind, outcome: result.ok ? "ok" : "failed" });
          const action = result.kind === "backup" ? (result.ok ? "backup.verified" : "backup.failed") : result.ok ? "drill.passed" : "drill.failed";
          await audit.recorder.recordOrgEvent(SYSTEM_AUDIT_CHAIN, {
            action,
            actor: "system",
            target: path.basename(result.file),
            details: {
              error: result.error ?? null,
              chainsVerified: result.chainsVerified ?? null,
              documentsOpened: result.documentsOpened ?? null,
              removed: result.removed?.length ?? null,
              keyringsRemoved: result.keyringsRemoved?.length ?? null,
            },
          });
          if (result.ok) return;
          for (const org of await identity.services.directory.listOrganisationIds()) {
            await notices.raise(org, backupFailureNotice(org, result.kind, result.error ?? "unknown error", result.at));
          }
        },
      })
    : null;
  const workers = [...store.workers, ...identity.directory.workers, ...audit.workers, ...partnerStorage.workers];
  registerHealthRoutes(app, {
    store,
    directory: identity.directory,
    bus,
    isShuttingDown: () => shuttingDown,
    workers,
    backups: backups ? () => ({ ...backups.latest, totals: backups.totals }) : undefined,
  });

  const listenSocket = await new Promise<NonNullable<Parameters<Parameters<typeof app.listen>[2]>[0]>>((resolve, reject) => {
    // Exclusive: without it uSockets sets SO_REUSEPORT, and a second server on a taken port would
    // "listen" too, the kernel splitting connections between two processes.
    const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (socket: unknown) => void) => void;
    listen.call(app, config.host, config.port, 1 /* LIBUS_LISTEN_EXCLUSIVE_PORT */, (socket) => {
      if (socket) resolve(socket as NonNullable<Parameters<Parameters<typeof app.listen>[2]>[0]>);
      else reject(new StartupRefusal(`cannot listen on ${config.host}:${config.port}: the port is in use (another server?) or not allowed`));
    });
  });
  const port = uws.us_socket_local_port(listenSocket);
  const sweeper = startBackgroundLoop({ name: "session sweep", everyMs: 1000, logger, run: () => sweepSessions(hub, config.limits.authTimeoutMs, clock(), monotonicClock()) });
  lifecycle.startSweep();
  backups?.start();
  logger.info({ host: config.host, port, dataDir: config.dataDir, uws: uwsModule, node: process.versions.node }, "listening");

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      uws.us_listen_socket_close(listenSocket);
      await Promise.all([sweeper.stop(), revalidator.stop()]);
      lifecycle.stop();
      await backups?.stop();
      hub.stopWrites();
      // Commit what was accepted (its acks and fan-out still go out), then tell clients to reconnect.
      await committer.flush();
      await ackedHeads?.stop().catch((error: unknown) => logger.error({ err: error }, "could not pin the acknowledged heads"));
      // Let the commits' continuations (acks, fan-out) run before the sockets go.
      await new Promise((resolve) => setImmediate(resolve));
      events.stopStreams();
      socketEvents.close();
      for (const session of [...hub.sessions]) {
        session.sendControl({ type: "notice", kind: "shutting-down", message: "server restarting" });
        session.close(CloseCode.ServiceRestart, "server restarting");
      }
      // Kept-alive HTTP connections would otherwise go on being served by this stopped instance;
      // a moment first, so the WebSocket close frames just queued reach their clients.
      await new Promise((resolve) => setTimeout(resolve, 50));
      (app as unknown as { close(): void }).close();
      await webhooks.close();
      await metricsListener?.close();
      stopEventWake();
      await events.close(); // derives what is pending: needs the log store and the directory
      await partnerStorage.close();
      await bus.close();
      await limiters.close();
      await store.close();
      await identity.close();
      await audit.close();
      await serverLock.release();
      logger.info("stopped");
    })();
    return closing;
  };
  return { port, metricsPort: metricsListener?.port ?? null, metrics, config, keys, store, bus, hub, identity, audit, events, lifecycle, webhooks, backups, workers, close };
}
