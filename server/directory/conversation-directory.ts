// The access side of conversations (their content lives in the log store): the record, the
// participant organisations, individually invited people, and the role an accessor has now.

import type { AccessLevel, Accessor, ConversationParticipant, ConversationPerson, ConversationRecord, ConversationState, ParticipantRole } from "./directory-types.ts";

/** Conversation records, participants, invited people and access roles. */
export interface ConversationDirectory {
  /** A new open conversation with its participant organisations. `not_found` for an unknown organisation. */
  createConversation(
    conversation: { id: string; orgId: string; title: string; externalRef: string | null; createdBy: string },
    participants: { orgId: string; role: ParticipantRole }[],
    now: number,
  ): Promise<void>;
  getConversation(id: string): Promise<ConversationRecord | null>;
  /**
   * Conversations visible to an accessor, newest first, paged by a (createdAt, id) cursor:
   * started by its organisation, joined by its organisation, or (for people) invited to. A
   * person who is no longer a member of the organisation they act for sees none.
   */
  listConversations(
    accessor: Accessor,
    options: { before?: { createdAt: number; id: string }; limit: number; externalRef?: string },
  ): Promise<ConversationRecord[]>;
  setConversationStatus(id: string, status: ConversationState): Promise<void>;
  listParticipants(conversationId: string): Promise<ConversationParticipant[]>;
  /** Adds a participant organisation or changes its role. `not_found` for an unknown organisation. */
  putParticipant(conversationId: string, orgId: string, role: ParticipantRole, now: number): Promise<void>;
  removeParticipant(conversationId: string, orgId: string): Promise<boolean>;
  listPeople(conversationId: string): Promise<ConversationPerson[]>;
  /** Adds an individually invited person or changes their role. */
  putPerson(conversationId: string, userId: string, role: ParticipantRole, now: number): Promise<void>;
  removePerson(conversationId: string, userId: string): Promise<boolean>;
  /**
   * The accessor's current role in a conversation, or null (which callers answer as 404):
   * members of the starting organisation write; participant organisations' members and invited
   * people get their recorded role (the better of the two); a person must still be a member of
   * the organisation they act for. A closed conversation is read-only for everyone.
   */
  accessRole(conversationId: string, accessor: Accessor): Promise<AccessLevel | null>;
}
