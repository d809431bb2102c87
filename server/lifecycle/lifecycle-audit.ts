// The one place deletion and retention write to the organisations' audit chains. The composition
// root hands in the org audit recorder (server/audit/, `recordOrgEvent`); without one (a build
// where it is not wired) the events still reach the structured log as security events.

import type { AuditedOperation, Directory } from "../directory/directory.ts";
import type { Logger } from "../platform/logger.ts";

/** The org audit actions deletion and retention record. */
export type LifecycleAuditAction = "conversation.deleted" | "retention.destroyed" | "person.deleted" | "legal-hold.placed" | "legal-hold.lifted";

/** One event for one organisation's chain: ids only, never personal data. */
export interface LifecycleAuditEvent {
  action: LifecycleAuditAction;
  /** `user:<id>` or `system`. */
  actor: string;
  /** The conversation or person concerned. */
  target: string;
  details: Record<string, string | number | boolean | null>;
}

/** Records an event in `org`'s audit chain; rejects when it could not (the action then fails). */
export type LifecycleAudit = (org: string, event: LifecycleAuditEvent) => Promise<void>;

/**
 * Runs a directory change and records its event in `org`'s chain (or each of several) in the same
 * transaction (the org audit recorder's recordWith): neither without the other. Nothing is
 * recorded when the change reports it changed nothing (false or null).
 */
export type AuditedChange = <K extends AuditedOperation>(
  op: K,
  args: Parameters<Directory[K]>,
  org: string | readonly string[],
  event: LifecycleAuditEvent,
) => Promise<Awaited<ReturnType<Directory[K]>>>;

/**
 * The audit function over an org event recorder, or over the log alone when there is none. Every
 * event is also logged as a security event, so an operator finds deletions in one place.
 */
export function lifecycleAudit(recordOrgEvent: ((org: string, event: LifecycleAuditEvent) => Promise<unknown>) | null, logger: Logger): LifecycleAudit {
  return async (org, event) => {
    logger.info({ security: "lifecycle", org, audit: event }, event.action);
    if (recordOrgEvent) await recordOrgEvent(org, event);
  };
}
