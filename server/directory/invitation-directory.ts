// Invitations: into a conversation (a link, bound to the first person and device that use it,
// with emailed second-device codes) and into an organisation (needs the person's consent).

import type { InvitationRecord, MemberInvitation, MemberRole } from "./directory-types.ts";

/** Conversation invitations and membership invitations. */
export interface InvitationDirectory {
  /** Stores an invitation; only its token's hash is kept. The email is stored lowercased. */
  createInvitation(invitation: Omit<InvitationRecord, "revokedAt" | "userId" | "deviceHash"> & { tokenHash: string }): Promise<void>;
  getInvitationByTokenHash(tokenHash: string): Promise<InvitationRecord | null>;
  getInvitation(id: string): Promise<InvitationRecord | null>;
  listInvitations(conversationId: string): Promise<InvitationRecord[]>;
  /** False when unknown or already revoked. */
  revokeInvitation(id: string, now: number): Promise<boolean>;
  /** First use: binds the invitation to a person and a device and adds the person to the conversation; false when already bound. */
  bindInvitation(id: string, userId: string, deviceHash: string, now: number): Promise<boolean>;
  /** Stores an emailed second-device code (its hash); the same code again is renewed, unused. */
  addInvitationCode(invitationId: string, codeHash: string, expiresAt: number): Promise<void>;
  /** Uses an emailed code once, within its validity. */
  consumeInvitationCode(invitationId: string, codeHash: string, now: number): Promise<boolean>;

  // Membership invitations (joining an organisation needs the person's consent).

  /** Stores a pending invitation of an address (stored lowercased) to become a member. */
  createMemberInvitation(invitation: Omit<MemberInvitation, "orgName">): Promise<void>;
  /** An organisation's pending invitations (expired ones included; the caller's clock decides). */
  listMemberInvitations(orgId: string): Promise<MemberInvitation[]>;
  /** The live invitations addressed to an email, with the inviting organisation's name. */
  listMemberInvitationsForEmail(email: string, now: number): Promise<MemberInvitation[]>;
  /** False when unknown, already used or revoked, or another organisation's (all alike). */
  revokeMemberInvitation(orgId: string, id: string, now: number): Promise<boolean>;
  /** The invited person says no; false when unknown, used, or addressed to someone else. */
  declineMemberInvitation(id: string, email: string, now: number): Promise<boolean>;
  /**
   * The invited person accepts, once, while the invitation is live and addressed to their email:
   * they become a member with its role (an existing membership is left as it is). Null otherwise.
   */
  acceptMemberInvitation(id: string, user: { id: string; email: string }, now: number): Promise<{ orgId: string; role: MemberRole } | null>;
}
