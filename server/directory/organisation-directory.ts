// Organisations and who belongs to them, with which role; sign-up (pending, then confirmed) makes them.

import type { ConfirmedSignup, MemberRole, Membership, Organisation, OrganisationMember, PendingSignup } from "./directory-types.ts";

/** Organisations, their settings and their members. */
export interface OrganisationDirectory {
  /** Sign-up: a new organisation with its first member as owner. `conflict` when the email exists. */
  createOrganisationWithOwner(
    org: { id: string; name: string },
    user: { id: string; email: string; name: string; passwordHash: string },
    now: number,
  ): Promise<void>;
  /** A sign-up awaiting its mailbox's confirmation (no account yet); expired ones are purged on the way. */
  createPendingSignup(signup: PendingSignup & { tokenHash: string }, now: number): Promise<void>;
  /** The live (unexpired, unconfirmed) sign-up behind a link, or null. */
  getPendingSignup(tokenHash: string, now: number): Promise<PendingSignup | null>;
  /**
   * Confirms a sign-up once, in one transaction: spends the link and creates the organisation with
   * its owner; `exists` (the link spent, nothing created) when the address got an account
   * meanwhile; null when the link is unknown, expired or already used.
   */
  confirmPendingSignup(tokenHash: string, ids: { userId: string; orgId: string }, now: number): Promise<ConfirmedSignup | null>;
  getOrganisation(id: string): Promise<Organisation | null>;
  /** Changes the given settings only. `not_found` for an unknown organisation. */
  updateOrganisation(id: string, changes: { name?: string; require2fa?: boolean; ipAllowlist?: string[]; retentionDays?: number; requireSecurityKey?: boolean }): Promise<void>;
  /** The organisations a person belongs to, oldest membership first. */
  listMemberships(userId: string): Promise<Membership[]>;
  /** A person's role in an organisation, or null when not a member. */
  getMembership(orgId: string, userId: string): Promise<MemberRole | null>;
  listMembers(orgId: string): Promise<OrganisationMember[]>;
  /** Every organisation's id (server-wide notices: a failed backup concerns everyone). */
  listOrganisationIds(): Promise<string[]>;
  /** Adds a member or changes their role. `invalid` when that would demote the last owner. */
  putMember(orgId: string, userId: string, role: MemberRole, now: number): Promise<void>;
  /** Removes a member; false when not a member. `invalid` for the last owner: an organisation keeps one. */
  removeMember(orgId: string, userId: string): Promise<boolean>;
}
