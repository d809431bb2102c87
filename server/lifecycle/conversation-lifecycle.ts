// Deletion and retention of conversations, and erasure of persons: the decisions and their order.
// A party deletes its side (it loses access at once, the others keep theirs); once every party
// has, and no legal hold remains, the conversation is destroyed: ledger line first (so a crash or
// a restore is finished by the replay), then the store (data key and rows), then the directory.

import type { Directory } from "../directory/directory.ts";
import type { ConversationParty } from "../directory/directory-types.ts";
import { isErasedEmail } from "../directory/lifecycle-queries.ts";
import type { AccessEvents } from "../bus/access-events.ts";
import type { Logger } from "../platform/logger.ts";
import type { Store } from "../store/store.ts";
import type { DeletionLedger, DeletionReason, DeletionSubject } from "./deletion-ledger.ts";
import type { AuditedChange, LifecycleAudit } from "./lifecycle-audit.ts";

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

export interface LifecycleDeps {
  directory: Directory;
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
  /** Side deletions are recorded in the same transaction through this, when given (else after, through `audit`). */
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
    const { directory, accessEvents, audit } = this.deps;
    const event = { action: reason === "retention" ? "retention.destroyed" : "conversation.deleted", actor, target: conversationId, details: { scope: "side" } } as const;
    const args = [conversationId, orgId, actor, reason, this.deps.now()] as const;
    // The side's deletion and its audit entry commit together when the recorder can (every server).
    const parties = this.deps.auditedChange
      ? await this.deps.auditedChange("deleteConversationSide", [...args], orgId, event)
      : await directory.deleteConversationSide(...args);
    if (this.deps.auditedChange) this.deps.logger.info({ security: "lifecycle", org: orgId, audit: event }, event.action);
    // Its people leave at once (sockets, streams); its copies of the conversation's events go too.
    accessEvents.emit({ kind: "conversation-access-changed", conversationId });
    await this.deps.forgetPartnerEvents?.(conversationId, orgId);
    if (!this.deps.auditedChange) await audit(orgId, event);
    return this.destroyIfDue(conversationId, parties, actor, reason === "retention" ? "retention" : "all-parties-deleted");
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
    const { audit } = this.deps;
    await this.recordDestruction("conversation", conversationId, reason);
    await this.removeEverywhere(conversationId);
    for (const org of parties) {
      await audit(org, {
        action: reason === "retention" ? "retention.destroyed" : "conversation.deleted",
        actor,
        target: conversationId,
        details: { scope: "destroyed" },
      });
    }
    this.deps.logger.warn({ security: "deletion", conversation: conversationId, reason }, "conversation destroyed");
  }

  /**
   * Records a destruction in this node's ledger file (durable first) and in the ledger the nodes
   * share through the directory, so every node replays it at its next start.
   */
  private async recordDestruction(subject: DeletionSubject, id: string, reason: DeletionReason): Promise<void> {
    const entry = await this.deps.ledger.append(subject, id, reason, this.deps.now());
    await this.deps.directory.recordDeletion({ subject, id, reason, at: entry.at });
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
  private async removeEverywhere(conversationId: string): Promise<boolean> {
    const { store, directory } = this.deps;
    await this.deps.forgetPartnerEvents?.(conversationId);
    await this.deps.forgetMail?.(conversationId);
    const hadData = await store.destroyConversation(conversationId);
    const hadRecord = await directory.removeConversationRecord(conversationId);
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
    const erased = await directory.erasePerson(userId, this.deps.now(), condition);
    await this.recordDestruction("person", userId, "person-deleted");
    accessEvents.emit({ kind: "user-revoked", userId });
    for (const orgId of erased.orgs) {
      accessEvents.emit({ kind: "membership-changed", orgId, userId });
      await audit(orgId, { action: "person.deleted", actor, target: userId, details: {} });
    }
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
          await this.removeEverywhere(entry.id);
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
