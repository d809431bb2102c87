// Deletion and retention of conversations, and erasure of persons: the decisions and their order.
// A party deletes its side (it loses access at once, the others keep theirs); once every party
// has, and no legal hold remains, the conversation is destroyed: the shared ledger line with each
// party's "destroying" audit entry first (one transaction), then this node's ledger file, the
// store (data key and rows) and the copies, and last the directory record with each party's
// "destroyed" entry (one transaction). A crash in between is finished by the replay at the next
// start, which writes the "destroyed" entries then.

import { ErrorCode } from "../../protocol/index.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import type { AuditedOperation } from "../directory/directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { RetentionDirectory } from "../directory/retention-directory.ts";
import type { ConversationParty } from "../directory/directory-types.ts";
import { isErasedEmail } from "../directory/lifecycle-queries.ts";
import type { AccessEvents } from "../bus/access-events.ts";
import { ParleyError } from "../platform/errors.ts";
import type { Logger } from "../platform/logger.ts";
import type { Store } from "../store/store.ts";
import type { DeletionLedger, DeletionReason, DeletionSubject } from "./deletion-ledger.ts";
import type { AuditedChange, LifecycleAudit, LifecycleAuditEvent } from "./lifecycle-audit.ts";

/** What deleting a side led to. */
export interface SideDeletion {
  /** True when this was the last side and the conversation is now destroyed. */
  destroyed: boolean;
  /** Parties whose side is still there. */
  remainingParties: string[];
  /** Parties holding the conversation under legal hold (it waits for them when no side remains). */
  legalHolds: string[];
}

/** What replaying the ledger destroyed again. */
export interface ReplayOutcome {
  conversations: string[];
  persons: string[];
}

/** The directory changes deletion and retention make, each audited: the RetentionDirectory's. */
export type LifecycleOperation = AuditedOperation & keyof RetentionDirectory;

/** What deletion and retention read and change in the directory. */
export type LifecycleDirectory = RetentionDirectory &
  Pick<ConversationDirectory, "getConversation"> &
  Pick<AccountDirectory, "getUser"> &
  Pick<OrganisationDirectory, "listMemberships">;

export interface LifecycleDeps {
  directory: LifecycleDirectory;
  store: Store;
  ledger: DeletionLedger;
  /** Access changes: sockets of people who lost access close on every node. */
  accessEvents: AccessEvents;
  /** Drops a destroyed conversation's cached state. */
  evict(conversationId: string): void;
  /**
   * Removes the conversation's partner events and their webhook copies: from every organisation
   * (destroyed), or from `orgId` alone (its side deleted). Absent: no partner events here.
   */
  forgetPartnerEvents?(conversationId: string, orgId?: string): Promise<unknown>;
  /** Removes kept copies of mail about a destroyed conversation (the outbox's invitation mails). */
  forgetMail?(conversationId: string): Promise<unknown>;
  audit: LifecycleAudit;
  /** Directory changes are recorded in the same transaction through this, when given (else after, through `audit`). */
  auditedChange?: AuditedChange;
  logger: Logger;
  now: () => number;
}

/** Who acts: `user:<id>` for people, `system` for the retention sweep and the ledger replay. */
export type LifecycleActor = string;

export class ConversationLifecycle {
  constructor(private readonly deps: LifecycleDeps) {}

  /**
   * `orgId` deletes its side. Callers have checked that the actor may (an admin of that party).
   * Destroys the conversation when no side remains and no legal hold does.
   */
  async deleteSide(conversationId: string, orgId: string, actor: LifecycleActor, reason: "deleted" | "retention"): Promise<SideDeletion> {
    const event = { action: reason === "retention" ? "retention.destroyed" : "conversation.deleted", actor, target: conversationId, details: { scope: "side" } } as const;
    const parties = await this.recordedChange("deleteConversationSide", [conversationId, orgId, actor, reason, this.deps.now()], orgId, event);
    // Its people leave at once (sockets, streams); its copies of the conversation's events go too.
    this.deps.accessEvents.emit({ kind: "conversation-access-changed", conversationId });
    await this.deps.forgetPartnerEvents?.(conversationId, orgId);
    try {
      return await this.destroyIfDue(conversationId, parties, actor, reason === "retention" ? "retention" : "all-parties-deleted");
    } catch (error) {
      // The side's deletion stands (recorded); the destruction it made due did not finish. Who
      // asked hears exactly that: a retry of theirs would find no side left to delete.
      this.deps.logger.error({ err: error, security: "deletion", conversation: conversationId }, "destruction did not finish; the retention sweep or the next start finishes it");
      throw new ParleyError(
        ErrorCode.StoreUnavailable,
        "your side is deleted, but destroying the conversation did not finish (it could not be completed or recorded in the audit trail); the server finishes it at its next retention sweep or start",
      );
    }
  }

  /**
   * A directory change and its event in the chain of `org` (or each of several), committed
   * together when the recorder can (every server; without one, the change and then the security
   * log line). Nothing is recorded when the change reports it changed nothing (false or null).
   */
  async recordedChange<K extends LifecycleOperation>(
    op: K,
    args: Parameters<RetentionDirectory[K]>,
    org: string | readonly string[],
    event: LifecycleAuditEvent,
  ): Promise<Awaited<ReturnType<RetentionDirectory[K]>>> {
    const orgs = typeof org === "string" ? [org] : [...org];
    const { auditedChange } = this.deps;
    if (auditedChange) {
      const result = await auditedChange(op, args, orgs, event);
      if (result !== false && result !== null) for (const o of orgs) this.deps.logger.info({ security: "lifecycle", org: o, audit: event }, event.action);
      return result;
    }
    const change = this.deps.directory[op] as (...a: Parameters<RetentionDirectory[K]>) => Promise<Awaited<ReturnType<RetentionDirectory[K]>>>;
    const result = await change.apply(this.deps.directory, args);
    if (result !== false && result !== null) for (const o of orgs) await this.deps.audit(o, event);
    return result;
  }

  /** Destroys the conversation if every side is deleted and no hold remains; reports where it stands. */
  async destroyIfDue(
    conversationId: string,
    parties: ConversationParty[],
    actor: LifecycleActor,
    reason: DeletionReason,
  ): Promise<SideDeletion> {
    const remainingParties = parties.filter((p) => p.sideDeletedAt === null).map((p) => p.orgId);
    const legalHolds = (await this.deps.directory.listLegalHolds(conversationId)).map((h) => h.orgId);
    if (parties.length === 0 || remainingParties.length > 0 || legalHolds.length > 0) {
      return { destroyed: false, remainingParties, legalHolds };
    }
    await this.destroy(conversationId, reason, parties.map((p) => p.orgId), actor);
    return { destroyed: true, remainingParties, legalHolds };
  }

  /** A party lifted its hold (or a sweep looks again): destroys now if that was all that waited. */
  async reconsider(conversationId: string, actor: LifecycleActor): Promise<SideDeletion> {
    const parties = await this.deps.directory.listConversationParties(conversationId);
    return this.destroyIfDue(conversationId, parties, actor, "all-parties-deleted");
  }

  /**
   * Destroys a conversation for good. The ledger line is durable before anything is removed, so a
   * crash half-way (or a later restore of a backup) is finished by the replay at the next start.
   */
  private async destroy(conversationId: string, reason: DeletionReason, parties: string[], actor: LifecycleActor): Promise<void> {
    const action = reason === "retention" ? "retention.destroyed" : "conversation.deleted";
    // "destroying" commits with the shared ledger line: no destruction starts unrecorded, and
    // none is recorded as started without the ledger line that makes a restart finish it.
    await this.recordDestruction("conversation", conversationId, reason, { orgs: parties, event: { action, actor, target: conversationId, details: { scope: "destroying" } } });
    await this.removeEverywhere(conversationId, { orgs: parties, event: { action, actor, target: conversationId, details: { scope: "destroyed" } } });
    this.deps.logger.warn({ security: "deletion", conversation: conversationId, reason }, "conversation destroyed");
  }

  /**
   * Records a destruction in the ledger the nodes share through the directory (with `started`, its
   * audit entries, in the same transaction) and in this node's ledger file, so every node replays
   * it at its next start. A crash between the two is levelled by the replay (syncLedgers).
   */
  private async recordDestruction(
    subject: DeletionSubject,
    id: string,
    reason: DeletionReason,
    started: { orgs: readonly string[]; event: LifecycleAuditEvent } | null,
  ): Promise<void> {
    const at = this.deps.now();
    const record = { subject, id, reason, at };
    if (started) await this.recordedChange("recordDeletion", [record], started.orgs, started.event);
    else await this.deps.directory.recordDeletion(record);
    await this.deps.ledger.append(subject, id, reason, at);
  }

  /**
   * Brings this node's ledger file and the shared ledger level: lines other nodes recorded are
   * appended to the file, and lines the shared table lost (a database restored to an earlier
   * point) are recorded in it again.
   */
  private async syncLedgers(): Promise<void> {
    const { ledger, directory } = this.deps;
    const shared = await directory.listDeletions();
    const known = new Set(shared.map((r) => `${r.subject}\0${r.id}`));
    for (const record of shared) {
      if (!ledger.has(record.subject, record.id)) await ledger.append(record.subject, record.id, record.reason as DeletionReason, record.at);
    }
    for (const entry of ledger.list()) {
      if (!known.has(`${entry.subject}\0${entry.id}`)) await directory.recordDeletion({ subject: entry.subject, id: entry.id, reason: entry.reason, at: entry.at });
    }
  }

  /**
   * Partner events and their webhook copies, store (data key and rows), directory record, cached
   * state; then every socket on it is re-checked. The directory record goes last: while it is
   * there, the ledger replay sees the conversation as existing and runs all of this again.
   */
  private async removeEverywhere(conversationId: string, completed: { orgs: readonly string[]; event: LifecycleAuditEvent }): Promise<boolean> {
    const { store } = this.deps;
    await this.deps.forgetPartnerEvents?.(conversationId);
    await this.deps.forgetMail?.(conversationId);
    const hadData = await store.destroyConversation(conversationId);
    // The record and the "destroyed" entries commit together: while neither is there, the
    // replay sees the conversation as existing and finishes (and records) the destruction.
    const hadRecord = await this.recordedChange("removeConversationRecord", [conversationId], completed.orgs, completed.event);
    this.deps.evict(conversationId);
    this.deps.accessEvents.emit({ kind: "conversation-access-changed", conversationId });
    return hadData || hadRecord;
  }

  /** True when a destroyed conversation has a directory record or log entries again (a restore). */
  private async existsAgain(conversationId: string): Promise<boolean> {
    if (await this.deps.directory.getConversation(conversationId)) return true;
    // Rows whose data key is gone (shredded before the restore) cannot be read: they exist, and go.
    return this.deps.store.readEntries(conversationId, 0, 1).then(
      (entries) => entries.length > 0,
      () => true,
    );
  }

  /**
   * Erases a person's personal data (see Directory.erasePerson), records it in the ledger (so a
   * restore does not bring it back) and in each of their organisations' audit chains, and closes
   * their sockets everywhere. `condition`: see Directory.erasePerson.
   */
  async erasePerson(userId: string, actor: LifecycleActor, condition?: { onlyMemberOf: string }): Promise<void> {
    const { directory, accessEvents, audit } = this.deps;
    const event = { action: "person.deleted", actor, target: userId, details: {} } as const;
    // Erased with the entry in each of their organisations' chains, in one transaction (the
    // organisations as read just before; one joined in between is recorded right after).
    const orgs = (await directory.listMemberships(userId)).map((m) => m.orgId);
    const erased = await this.recordedChange("erasePerson", [userId, this.deps.now(), condition], orgs, event);
    for (const orgId of erased.orgs) if (!orgs.includes(orgId)) await audit(orgId, event);
    await this.recordDestruction("person", userId, "person-deleted", null);
    accessEvents.emit({ kind: "user-revoked", userId });
    for (const orgId of erased.orgs) accessEvents.emit({ kind: "membership-changed", orgId, userId });
    this.deps.logger.warn({ security: "deletion", user: userId }, "person erased");
  }

  /**
   * Destroys again whatever the ledger names that exists again (after a restore of the data from
   * before its destruction). Runs at every start before the server accepts connections, and after
   * `parley restore` / `parley ledger replay`. First levels this node's file with the shared
   * ledger (several nodes), so a destruction on any node is replayed on every node.
   */
  async replayDeletionLedger(): Promise<ReplayOutcome> {
    const { ledger, directory, logger } = this.deps;
    await this.syncLedgers();
    const outcome: ReplayOutcome = { conversations: [], persons: [] };
    for (const entry of ledger.list()) {
      if (entry.subject === "conversation") {
        // Looked up first: most lines name something long gone, and a start should stay quick.
        if (await this.existsAgain(entry.id)) {
          // Unfinished (a crash mid-destruction) or back from a restore: its parties' chains say so when it is done.
          const parties = (await directory.listConversationParties(entry.id)).map((p) => p.orgId);
          const event = { action: "conversation.deleted", actor: "system", target: entry.id, details: { scope: "destroyed", replayed: true } } as const;
          await this.removeEverywhere(entry.id, { orgs: parties, event });
          outcome.conversations.push(entry.id);
        }
        continue;
      }
      const user = await directory.getUser(entry.id);
      if (!user || isErasedEmail(user.id, user.email)) continue;
      await directory.erasePerson(entry.id, this.deps.now());
      this.deps.accessEvents.emit({ kind: "user-revoked", userId: entry.id });
      outcome.persons.push(entry.id);
    }
    if (outcome.conversations.length + outcome.persons.length > 0) {
      logger.warn({ security: "deletion", replayed: outcome }, "deletion ledger replay destroyed restored data again");
    }
    return outcome;
  }
}
