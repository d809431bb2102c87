// Wires deletion and retention: the deletion ledger of the data directory, the conversation
// lifecycle over the store and the directory, its routes, and the retention sweep. The composition
// root opens it before listening, replays the ledger, then starts the sweep.

import type { Config } from "../platform/config.ts";
import type { RouteDefinition } from "../http/route.ts";
import type { HttpServices } from "../identity/http-services.ts";
import type { AccessEvents } from "../bus/access-events.ts";
import type { Logger } from "../platform/logger.ts";
import type { Store } from "../store/store.ts";
import { ConversationLifecycle, type LifecycleDirectory, type ReplayOutcome } from "./conversation-lifecycle.ts";
import { DeletionLedger } from "./deletion-ledger.ts";
import { type AuditedChange, type LifecycleAuditEvent, lifecycleAudit } from "./lifecycle-audit.ts";
import { type LifecycleRouteServices, lifecycleRoutes } from "./lifecycle-routes.ts";
import { type SweepOutcome, scheduleRetentionSweep, sweepRetention } from "./retention-sweep.ts";

/** Deletion and retention as the server sees them. */
export interface Lifecycle {
  ledger: DeletionLedger;
  conversations: ConversationLifecycle;
  routes: RouteDefinition[];
  /** Destroys again whatever the ledger names that exists again (after a restore). */
  replayDeletionLedger(): Promise<ReplayOutcome>;
  /** One retention pass now (the schedule runs the same). */
  sweep(): Promise<SweepOutcome>;
  /** Starts the scheduled sweep. */
  startSweep(): void;
  stop(): void;
}

export interface LifecycleModuleDeps {
  directory: LifecycleDirectory;
  store: Store;
  accessEvents: AccessEvents;
  /** The lifecycle routes' services; the mailer, whose outbox forgets a destroyed conversation's mail. */
  services: LifecycleRouteServices & Pick<HttpServices, "mailer">;
  evict(conversationId: string): void;
  /** See LifecycleDeps.forgetPartnerEvents. */
  forgetPartnerEvents(conversationId: string, orgId?: string): Promise<unknown>;
  /** The org audit recorder's entry point, when there is one. */
  recordOrgEvent: ((org: string, event: LifecycleAuditEvent) => Promise<unknown>) | null;
  /** The recorder's same-transaction entry point (side deletions), when there is one. */
  auditedChange?: AuditedChange;
  logger: Logger;
  now: () => number;
}

/** Opens the ledger (a damaged one throws: the server must not start over it) and builds the rest. */
export async function openLifecycle(config: Config, deps: LifecycleModuleDeps): Promise<Lifecycle> {
  const ledger = await DeletionLedger.open(config.dataDir);
  const audit = lifecycleAudit(deps.recordOrgEvent, deps.logger);
  const conversations = new ConversationLifecycle({
    directory: deps.directory,
    store: deps.store,
    ledger,
    accessEvents: deps.accessEvents,
    evict: deps.evict,
    forgetPartnerEvents: deps.forgetPartnerEvents,
    forgetMail: (conversation) => deps.services.mailer.forgetConversation?.(conversation) ?? Promise.resolve(0),
    audit,
    auditedChange: deps.auditedChange,
    logger: deps.logger,
    now: deps.now,
  });
  const sweepDeps = { directory: deps.directory, store: deps.store, lifecycle: conversations, mailer: deps.services.mailer, logger: deps.logger };
  let stopSweep: (() => void) | null = null;
  return {
    ledger,
    conversations,
    routes: lifecycleRoutes({ services: deps.services, lifecycle: conversations }),
    replayDeletionLedger: () => conversations.replayDeletionLedger(),
    sweep: () => sweepRetention(sweepDeps, deps.now()),
    startSweep() {
      stopSweep ??= scheduleRetentionSweep(sweepDeps, config.lifecycle.retentionSweepMs, deps.now);
    },
    stop() {
      stopSweep?.();
      stopSweep = null;
    },
  };
}
