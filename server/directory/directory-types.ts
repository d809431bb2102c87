// Plain data shapes of the directory: organisations, people, memberships, API keys, the access
// side of conversations, invitations and sessions. Shared by every directory backend and by the
// HTTP routes; nothing here knows about SQL.

/** A member's role in an organisation. */
export type MemberRole = "owner" | "admin" | "member";
/** An organisation's (or invited person's) role in a conversation. */
export type ParticipantRole = "participant" | "observer";
/** A conversation's lifecycle state. */
export type ConversationState = "open" | "closed";

export interface Organisation {
  id: string;
  name: string;
  createdAt: number;
  /** Members must have two-factor authentication enabled to sign in. */
  require2fa: boolean;
  /** Members must have a security key (WebAuthn), not just any second factor. */
  requireSecurityKey: boolean;
  /** CIDR ranges or addresses people and API keys of this organisation may connect from; empty = any. */
  ipAllowlist: string[];
  /** Days of inactivity after which the organisation's side of a conversation is deleted (server/lifecycle/). */
  retentionDays: number;
}

export interface User {
  id: string;
  email: string;
  name: string;
  /** argon2id PHC string; null for invited people who never set a password. */
  passwordHash: string | null;
  /** TOTP secret sealed with the secrets key; null when not enrolled. */
  totpSealed: Uint8Array | null;
  totpEnabled: boolean;
  totpLastStep: number | null;
  createdAt: number;
}

/** How an accessor may use a conversation: write (edit, post) or only read. */
export type AccessLevel = "writer" | "observer";

export interface Membership {
  orgId: string;
  orgName: string;
  userId: string;
  role: MemberRole;
}

/** A member as an organisation's member list shows them. */
export interface OrganisationMember {
  userId: string;
  email: string;
  name: string;
  role: MemberRole;
}

export interface ApiKeyRecord {
  id: string;
  orgId: string;
  name: string;
  scopes: string[];
  secretHash: string;
  createdAt: number;
  createdBy: string;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface ConversationRecord {
  id: string;
  orgId: string;
  title: string;
  externalRef: string | null;
  status: ConversationState;
  createdAt: number;
  createdBy: string;
}

export interface ConversationParticipant {
  orgId: string;
  orgName: string;
  role: ParticipantRole;
}

export interface ConversationPerson {
  userId: string;
  email: string;
  role: ParticipantRole;
}

export interface InvitationRecord {
  id: string;
  conversationId: string;
  email: string;
  role: ParticipantRole;
  invitedByOrg: string;
  invitedBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  /** The person the invitation signed in (set on first use). */
  userId: string | null;
  /** Hash of the device token handed out on first use; other devices need an emailed code. */
  deviceHash: string | null;
}

/** A pending invitation to become a member of an organisation (accepted by the person, signed in). */
export interface MemberInvitation {
  id: string;
  orgId: string;
  /** Set when listed for the invited person (they see who invites them). */
  orgName: string | null;
  email: string;
  role: MemberRole;
  invitedBy: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * A sign-up waiting for its mailbox to confirm it: nothing of it is an account yet. Kept until
 * confirmed (then removed) or expired; the password only as its hash.
 */
export interface PendingSignup {
  email: string;
  name: string;
  organisation: string;
  passwordHash: string;
  createdAt: number;
  expiresAt: number;
}

/** What confirming a sign-up did: created the owner and organisation, or found the address taken meanwhile. */
export type ConfirmedSignup =
  | { status: "created"; user: { id: string; email: string; name: string }; organisation: { id: string; name: string } }
  | { status: "exists" };

/** Outcome of presenting a refresh token. */
export type RefreshOutcome =
  /** `retried`: a spent token's one retry within the reuse grace (its unseen successor retired). */
  | { status: "rotated"; userId: string; orgId: string; familyId: string; conversationScope: string | null; retried: boolean }
  | { status: "reused"; familyId: string; userId: string }
  | { status: "invalid" };

/** Who is asking about a conversation: a person in an organisation, or an API key of one. */
export interface Accessor {
  orgId: string;
  /** Absent for API keys, which act for their organisation only. */
  userId?: string;
}

/** Time-limited, read-only access of a Parley operator to one conversation, with its reason. */
export interface SupportGrant {
  id: string;
  /** Who at the operator (a name or staff id). */
  operator: string;
  conversationId: string;
  /** Why, in the operator's words: shown to the customer. */
  reason: string;
  grantedAt: number;
  expiresAt: number;
  revokedAt?: number | null;
}

/** A party to a conversation (its starting organisation or a participant organisation), as deletion and retention see it. */
export interface ConversationParty {
  orgId: string;
  /** The organisation's retention period. */
  retentionDays: number;
  /** When the organisation deleted its side (it lost access then), or null. */
  sideDeletedAt: number | null;
}

/** A legal hold one party placed on a conversation: it is not destroyed while any hold remains. */
export interface LegalHold {
  conversationId: string;
  orgId: string;
  /** The person who placed it. */
  setBy: string;
  reason: string;
  setAt: number;
}

/** What erasing a person took away, so the caller can close what it still has open. */
export interface ErasedPerson {
  /** Their sign-in session families, all revoked. */
  families: string[];
  /** The organisations they were a member of. */
  orgs: string[];
}

/** A destruction as the shared deletion ledger (several nodes) records it. */
export interface DeletionRecord {
  subject: "conversation" | "person";
  id: string;
  reason: string;
  at: number;
}

/** A security key or passkey registered by a person (WebAuthn); public material only. */
export interface WebauthnCredential {
  /** The credential id (base64url), as the authenticator names it. */
  id: string;
  userId: string;
  name: string;
  /** COSE public key. */
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  createdAt: number;
  lastUsedAt: number | null;
}
