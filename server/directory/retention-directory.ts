// What deletion and retention (decided in server/lifecycle/) ask of the directory: a party's side
// of a conversation deleted, legal holds, destroyed records, erased people, the deletion ledger.

import type { ConversationParty, DeletionRecord, ErasedPerson, LegalHold } from "./directory-types.ts";

/** Deletion, legal holds, erasure and the deletion ledger. */
export interface RetentionDirectory {
  /**
   * A party deletes its side of a conversation: from now on nobody acting for it has access, and
   * the guests it invited and its invitations go too. Idempotent. Returns the parties after the
   * change. `not_found` when the conversation is unknown or the organisation is not a party.
   */
  deleteConversationSide(conversationId: string, orgId: string, deletedBy: string, reason: string, now: number): Promise<ConversationParty[]>;
  /** The starting organisation and the participant organisations; empty when the conversation is unknown. */
  listConversationParties(conversationId: string): Promise<ConversationParty[]>;
  /** Places (or renews) a party's legal hold. `not_found` for an unknown conversation. */
  putLegalHold(hold: LegalHold): Promise<void>;
  /** Lifts a party's legal hold; false when it had none. */
  removeLegalHold(conversationId: string, orgId: string): Promise<boolean>;
  listLegalHolds(conversationId: string): Promise<LegalHold[]>;
  /** Removes a destroyed conversation's record and everything hanging off it; false when unknown. */
  removeConversationRecord(conversationId: string): Promise<boolean>;
  /** Conversation ids after `after` in id order, at most `limit` (what a sweep pages through). */
  listConversationIds(after: string, limit: number): Promise<string[]>;
  /**
   * Erases a person's personal data: email (replaced by a pseudonymous one), name, password,
   * TOTP, recovery codes, sessions, memberships, API keys they created, invitations addressed to
   * them. The row and its id stay, so audit entries go on naming a stable, meaningless id.
   * `not_found` for an unknown person; `invalid` when they are the last owner of an organisation
   * that has other members (ownership must pass on first; the refusal names no organisation).
   * With `onlyMemberOf`, erases only when that organisation is the person's one membership,
   * checked in the same transaction (`not_found` otherwise: nobody acts on an account through
   * an organisation it is not in, and another organisation's hold on it is none of theirs).
   */
  erasePerson(userId: string, now: number, condition?: { onlyMemberOf: string }): Promise<ErasedPerson>;
  /** Records a destruction in the ledger every node shares (idempotent). */
  recordDeletion(record: DeletionRecord): Promise<void>;
  /** Every destruction recorded, oldest first. */
  listDeletions(): Promise<DeletionRecord[]>;
}
