// Wires partner events over an event store: the recorder the HTTP routes and invitations call,
// the deriver of message and notes events behind the write path, the streams (SSE route, socket
// subscriptions, paging route) and retention. The composition root opens it before identity
// (which records through it) and starts it once the directory exists.

import { type BackgroundLoop, startBackgroundLoop } from "../platform/background-loop.ts";
import type { ProxyTrust } from "../platform/client-address.ts";
import type { Config } from "../platform/config.ts";
import type { PrincipalDeps } from "../http/principal.ts";
import type { RouteDefinition } from "../http/route.ts";
import type { Logger } from "../platform/logger.ts";
import type { DocumentCache } from "../documents/document-cache.ts";
import type { UWS } from "../platform/uws.ts";
import type { Store } from "../store/store.ts";
import { DocumentEvents } from "./document-events.ts";
import { EventAccess, type EventAccessDirectory } from "./event-access.ts";
import { EventNotifier } from "./event-notifier.ts";
import { type AudienceDirectory, EventRecorder } from "./event-recorder.ts";
import { eventRoutes } from "./event-routes.ts";
import type { EventStore } from "./event-store.ts";
import { type EventStreams, registerEventStreamRoute } from "./event-stream-route.ts";
import type { ConnectionLimits } from "../limits/connection-limits.ts";
import type { RequestLimits } from "../limits/request-limits.ts";

/** How often retention runs. */
const PRUNE_INTERVAL_MS = 3600_000;
/** How often running streams' credentials are checked again. */
export const RECHECK_MS = 30_000;

/** What starting the streams needs from the rest of the server. */
export interface EventsStartDeps {
  app: UWS.TemplatedApp;
  /** What the recorder (a conversation's audience) and the stream's access checks read. */
  directory: AudienceDirectory & EventAccessDirectory;
  principals: PrincipalDeps;
  allowedOrigins: readonly string[];
  proxyTrust: ProxyTrust;
  /** Abuse limits: open streams per address, request rates per address and caller. */
  connections?: ConnectionLimits;
  requestLimits?: RequestLimits;
}

/** Partner events as the rest of the server sees them. */
export interface Events {
  store: EventStore;
  notifier: EventNotifier;
  recorder: EventRecorder;
  /** Feed of this node's commits (message and notes events). */
  documents: DocumentEvents;
  /**
   * Connects the directory, registers the SSE route, derives what the last run left; returns the
   * HTTP routes and the access checks (the Parley socket route's event subscriptions use them:
   * realtime/socket-event-streams.ts, wired by the composition root).
   */
  start(deps: EventsStartDeps): Promise<{ routes: RouteDefinition[]; access: EventAccess }>;
  /** Applies retention now; returns the number of stream entries removed. */
  prune(): Promise<number>;
  /** Ends streams (clients reconnect elsewhere or later). First step of shutdown. */
  stopStreams(): void;
  /** Derives what is pending (the event store stays open: its opener closes it). Call before the log store and directory close. */
  close(): Promise<void>;
}

/** Builds the recorder and deriver over `store`. */
export function openEvents(
  config: Config,
  deps: { store: EventStore; log: Pick<Store, "listChainHeads">; cache: Pick<DocumentCache, "get" | "peek" | "withIndex">; logger: Logger; now: () => number },
): Events {
  const settings = config.events;
  const logger = deps.logger.child({ component: "events" });
  const store = deps.store;
  const notifier = new EventNotifier();
  const recorder = new EventRecorder({ store, notifier, logger, now: deps.now });
  const documents = new DocumentEvents({
    cache: deps.cache,
    store,
    log: deps.log,
    recorder,
    logger,
    options: { debounceMs: settings.debounceMs, notesQuietMs: settings.notesQuietMs, notesMaxWaitMs: Math.max(30_000, settings.notesQuietMs) },
  });
  const retentionMs = settings.retentionDays * 86_400_000;
  let pruneLoop: BackgroundLoop | null = null;
  let streams: EventStreams | null = null;

  const events: Events = {
    store,
    notifier,
    recorder,
    documents,
    async start(start) {
      recorder.useDirectory(start.directory);
      const access = new EventAccess(start.directory);
      streams = registerEventStreamRoute(start.app, {
        store,
        notifier,
        access,
        principals: start.principals,
        allowedOrigins: start.allowedOrigins,
        proxyTrust: start.proxyTrust,
        heartbeatMs: settings.heartbeatSeconds * 1000,
        recheckMs: RECHECK_MS,
        maxStalledMs: 60_000,
        maxStreamsPerOrg: 20,
        connections: start.connections,
        requestLimits: start.requestLimits,
        logger,
      });
      await documents.start();
      await events.prune();
      pruneLoop = startBackgroundLoop({ name: "event retention", everyMs: PRUNE_INTERVAL_MS, logger, run: () => events.prune() });
      return { routes: eventRoutes({ store }), access };
    },
    async prune() {
      const removed = await store.prune(deps.now() - retentionMs);
      if (removed > 0) logger.info({ removed, retentionDays: settings.retentionDays }, "old events removed");
      return removed;
    },
    stopStreams() {
      streams?.close();
    },
    async close() {
      await pruneLoop?.stop();
      events.stopStreams();
      await documents.flush();
    },
  };
  return events;
}
