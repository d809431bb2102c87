// Wires webhooks over a webhook store: the guarded outbound transport, the dispatcher that
// follows each endpoint's organisation stream, and the HTTP routes that manage endpoints.

import type { Config } from "../platform/config.ts";
import type { EventNotifier } from "../events/event-notifier.ts";
import type { EventStore } from "../events/event-store.ts";
import type { RouteDefinition } from "../http/route.ts";
import type { Logger } from "../platform/logger.ts";
import type { DeliveryClaims } from "./delivery-claims.ts";
import { SafeHttpTransport, type WebhookTransport } from "./outbound-http.ts";
import { type Clock, timersOn } from "./retry-schedule.ts";
import { WebhookDispatcher, type WebhookDispatcherDeps } from "./webhook-dispatcher.ts";
import { webhookRoutes } from "./webhook-routes.ts";
import type { WebhookStore } from "./webhook-store.ts";

/** Webhooks as the rest of the server sees them. */
export interface Webhooks {
  store: WebhookStore;
  dispatcher: WebhookDispatcher;
  routes: RouteDefinition[];
  /** Stops deliveries, waiting for requests in flight (the store stays open: its opener closes it). */
  close(): Promise<void>;
}

/** Test hooks: a transport, or timers and a clock, other than the real ones (the server's clock by default). */
export interface WebhookOptions {
  transport?: WebhookTransport;
  clock?: Clock;
}

/** With several nodes: how often each re-reads the enabled endpoints (changes made through other nodes). */
const SHARED_REFRESH_MS = 5000;

/** Starts delivering to every enabled endpoint in `store` (those this node claims, with several nodes). */
export async function openWebhooks(
  config: Config,
  deps: {
    store: WebhookStore;
    events: EventStore;
    notifier: EventNotifier;
    secretsKey: Uint8Array;
    logger: Logger;
    now: () => number;
    /** Several nodes: who delivers which endpoint. Absent: this node delivers them all. */
    claims?: DeliveryClaims;
    /** Told each delivery attempt's outcome (metrics). */
    onOutcome?: WebhookDispatcherDeps["onOutcome"];
  },
  options: WebhookOptions = {},
): Promise<Webhooks> {
  const settings = config.events.webhooks;
  const logger = deps.logger.child({ component: "webhooks" });
  const store = deps.store;
  const urlPolicy = { allowPrivate: settings.allowPrivate };
  if (settings.allowPrivate) logger.warn("PARLEY_WEBHOOK_ALLOW_PRIVATE is on: webhooks may reach private and loopback addresses (development only)");
  const httpTransport = options.transport ? null : new SafeHttpTransport({ ...urlPolicy, timeoutMs: settings.timeoutMs, userAgent: "Parley-Webhooks/1" });
  const dispatcher = new WebhookDispatcher({
    store,
    events: deps.events,
    notifier: deps.notifier,
    transport: options.transport ?? (httpTransport as SafeHttpTransport),
    secretsKey: deps.secretsKey,
    policy: {
      baseMs: settings.retryBaseMs,
      maxDelayMs: settings.retryMaxDelayMs,
      windowMs: settings.retryWindowHours * 3600_000,
      disableAfterMs: settings.disableAfterHours * 3600_000,
    },
    clock: options.clock ?? timersOn(deps.now),
    logger,
    claims: deps.claims,
    refreshMs: deps.claims ? SHARED_REFRESH_MS : undefined,
    onOutcome: deps.onOutcome,
  });
  await dispatcher.start();
  const routes = webhookRoutes({ store, events: deps.events, dispatcher, secretsKey: deps.secretsKey, urlPolicy, now: deps.now });
  return {
    store,
    dispatcher,
    routes,
    async close() {
      await dispatcher.close();
      httpTransport?.close();
    },
  };
}
