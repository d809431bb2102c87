// Records account and access events in organisation audit chains. The one entry point for every
// caller (identity routes, deletion and retention, exports): `recordOrgEvent(org, event)`. Personal
// data (emails, addresses, user agents) never enters a chain in clear: it is replaced by a keyed
// hash under the audit key, so deleting a person removes nothing a chain's hashes cover.

import { createHmac } from "node:crypto";
import { type AuditedChangesOf, type AuditedOperation, type AuditedOutcome, type AuditedStep, changedSomething, type Directory, type OrgAuditAppend } from "./directory.ts";
import type { Logger } from "../platform/logger.ts";
import type { AuditLog } from "./audit-log.ts";
import { detailsProblem, type OrgAuditAction, type OrgAuditDetail, type OrgAuditEntry } from "./org-chain.ts";

/** Personal data an event may carry; each is recorded as `<name>Hash`, an HMAC under the audit key. */
export interface PersonalData {
  email?: string;
  ip?: string;
  userAgent?: string;
}

/** An event as callers hand it in. */
export interface OrgEventInput {
  action: OrgAuditAction;
  /** Who did it: `user:<id>`, `api-key:<id>`, `operator:<name>` (hashed), or `system`. */
  actor: string;
  /** What it was done to (a conversation, invitation, key or member id); "" when nothing. */
  target?: string;
  /** Non-personal facts (roles, scopes, reasons given by the organisation itself). */
  details?: Record<string, OrgAuditDetail>;
  /** Personal data, recorded only as keyed hashes. */
  personal?: PersonalData;
}

/** An event and the organisations whose chains record it (each once). */
export interface OrgEventFor {
  orgs: string | readonly string[];
  event: OrgEventInput;
}

/** API key use is recorded once per key per hour: enough to answer "was this key used, and when
 * roughly", without a chain entry (a locked write) on every request a partner system makes. */
const API_KEY_USE_WINDOW_MS = 3600_000;

/** At most this many keys remembered for use deduplication (a bounded map; forgetting only re-records). */
const MAX_REMEMBERED_KEYS = 10_000;

/** Told of every event once it is durable in its chain (security notices listen here). */
export type OrgEventListener = (org: string, event: OrgEventInput) => void;

export class OrgAuditRecorder {
  private readonly keyUses = new Map<string, number>();
  private readonly listeners: OrgEventListener[] = [];

  constructor(
    private readonly deps: { log: AuditLog; auditKey: Uint8Array; now: () => number; logger: Logger },
  ) {}

  /**
   * Appends an event to the organisation's chain and resolves once it is durable. Rejects when it
   * could not be recorded: callers let the action fail rather than go unaudited.
   */
  async recordOrgEvent(org: string, event: OrgEventInput): Promise<OrgAuditEntry> {
    const entry = this.entryFor(org, event);
    const stored = await this.deps.log.appendOrgAuditEvent(entry.org, entry.event, entry.now);
    this.tell(org, event);
    return stored;
  }

  /**
   * Runs a directory change and appends its event to `org`'s chain (or each of several) in the same transaction, so
   * neither exists without the other whatever crashes when (see Directory.audited). Nothing is
   * appended when the change reports it changed nothing (see changedSomething). Resolves with the
   * operation's result; listeners hear of the event once it committed.
   */
  async recordWith<K extends AuditedOperation>(
    directory: NoInfer<AuditedChangesOf<K>>,
    op: K,
    args: Parameters<Directory[K]>,
    org: string | readonly string[],
    event: OrgEventInput,
  ): Promise<Awaited<ReturnType<Directory[K]>>> {
    const orgs = [...new Set(typeof org === "string" ? [org] : org)];
    const result = await directory.audited(op, args, orgs.map((o) => this.entryFor(o, event)));
    if (changedSomething(op, result)) for (const o of orgs) this.tell(o, event);
    return result as Awaited<ReturnType<Directory[K]>>;
  }

  /**
   * Runs several directory changes as one, with their events, in one transaction (see
   * Directory.auditedSteps): all of it or none of it. Resolves with the outcome (the steps' results,
   * or which step changed nothing, and then nothing changed and nothing was appended). Listeners
   * hear of the events once they committed.
   */
  async recordStepsWith(directory: Pick<Directory, "auditedSteps">, steps: readonly AuditedStep[], events: readonly OrgEventFor[]): Promise<AuditedOutcome> {
    const targets = events.map(({ orgs, event }) => ({ orgs: [...new Set(typeof orgs === "string" ? [orgs] : orgs)], event }));
    const outcome = await directory.auditedSteps(
      steps,
      targets.flatMap(({ orgs, event }) => orgs.map((o) => this.entryFor(o, event))),
    );
    if (outcome.changed) for (const { orgs, event } of targets) for (const o of orgs) this.tell(o, event);
    return outcome;
  }

  /** The organisations taking part in a conversation (its starter and participants), for events that are each party's business. */
  async conversationParties(directory: Pick<Directory, "getConversation" | "listParticipants">, conversationId: string): Promise<string[]> {
    const conversation = await directory.getConversation(conversationId);
    if (!conversation) return [];
    return [...new Set([conversation.orgId, ...(await directory.listParticipants(conversationId)).map((p) => p.orgId)])];
  }

  /** The event as an entry to append: personal data hashed, details checked, stamped now. */
  private entryFor(org: string, event: OrgEventInput): OrgAuditAppend {
    const details: Record<string, OrgAuditDetail> = { ...event.details };
    for (const [name, value] of Object.entries(event.personal ?? {})) {
      if (typeof value === "string") details[`${name}Hash`] = this.pseudonym(value);
    }
    const problem = detailsProblem(details);
    if (problem) throw new TypeError(problem);
    return { org, event: { action: event.action, actor: event.actor, target: event.target ?? "", details }, now: this.deps.now() };
  }

  private tell(org: string, event: OrgEventInput): void {
    for (const listener of this.listeners) {
      try {
        listener(org, event);
      } catch (error) {
        this.deps.logger.error({ err: error, org, action: event.action }, "org audit listener failed");
      }
    }
  }

  /** Adds a listener told of every recorded event (with its personal data, which the chain only hashes). */
  observe(listener: OrgEventListener): void {
    this.listeners.push(listener);
  }

  /**
   * For events nobody waits on (a failed sign-in): records, and if that fails, logs the event in
   * full at error level so it is not lost silently.
   */
  recordOrLog(org: string, event: OrgEventInput): Promise<void> {
    return this.recordOrgEvent(org, event).then(
      () => undefined,
      (error: unknown) => this.deps.logger.error({ err: error, org, audit: { ...event, personal: undefined } }, "org audit event not recorded"),
    );
  }

  /** Records an API key's use, at most once per key per hour on this node. */
  async recordApiKeyUse(org: string, keyId: string): Promise<void> {
    const now = this.deps.now();
    const last = this.keyUses.get(keyId);
    if (last !== undefined && now - last < API_KEY_USE_WINDOW_MS) return;
    if (this.keyUses.size >= MAX_REMEMBERED_KEYS) this.keyUses.clear();
    this.keyUses.set(keyId, now);
    try {
      await this.recordOrgEvent(org, { action: "api-key.used", actor: `api-key:${keyId}`, target: keyId });
    } catch (error) {
      this.keyUses.delete(keyId); // try again on the next use
      throw error;
    }
  }

  /** Records one event in several organisations' chains (each once), e.g. both sides of a participant change. */
  async recordInOrgs(orgs: Iterable<string>, event: OrgEventInput): Promise<void> {
    for (const org of new Set(orgs)) await this.recordOrgEvent(org, event);
  }

  /**
   * Records an event about a conversation in the chain of every organisation taking part in it
   * (support access, for instance, is each party's business).
   */
  async recordForConversationParties(
    directory: Pick<Directory, "getConversation" | "listParticipants">,
    conversationId: string,
    event: OrgEventInput,
  ): Promise<void> {
    await this.recordInOrgs(await this.conversationParties(directory, conversationId), event);
  }


  /** A stable keyed hash of a personal value: equal values match within this deployment, nobody can reverse it. */
  pseudonym(value: string): string {
    return createHmac("sha256", this.deps.auditKey).update("parley/org-audit/personal\0").update(value.trim().toLowerCase(), "utf8").digest("hex");
  }
}

/** The org audit actor of a caller: `user:<id>` for people, `api-key:<id>` for partner systems. */
export function auditActor(principal: { kind: "user"; userId: string } | { kind: "apiKey"; keyId: string }): string {
  return principal.kind === "user" ? `user:${principal.userId}` : `api-key:${principal.keyId}`;
}
