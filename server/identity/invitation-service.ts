// Invitations of outside people to one conversation: a 256-bit link valid 14 days, bound to the
// conversation and the address, stored only as a hash, revocable. First use signs the person in
// (creating a password-less account if needed) and remembers that device; any other device must
// also give a 6-digit code mailed to the invited address (valid 10 minutes).

import { createHmac, randomBytes, randomInt } from "node:crypto";
import { ErrorCode, type EventActor } from "../../protocol/index.ts";
import type { OrgAuditRecorder, OrgEventFor } from "../directory/org-recorder.ts";
import type { AttemptLimiter } from "../auth/attempt-limiter.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import { type AuditedChanges, type AuditedOutcome, type AuditedStep, DirectoryError } from "../directory/directory.ts";
import type { InvitationDirectory } from "../directory/invitation-directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { InvitationRecord, ParticipantRole } from "../directory/directory-types.ts";
import { ParleyError, RateLimitedError } from "../platform/errors.ts";
import type { EventRecorder } from "../events/event-recorder.ts";
import { secretHash } from "../http/principal.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { AccessEvents } from "../bus/access-events.ts";
import type { SessionService, TokenPair } from "./session-service.ts";

/** How long an invitation link stays valid. */
export const INVITATION_TTL_MS = 14 * 24 * 3600 * 1000;
/** How long an emailed device code stays valid. */
export const DEVICE_CODE_TTL_MS = 10 * 60 * 1000;

/** A sign-in through an invitation. */
export interface InvitationSignIn extends TokenPair {
  conversationId: string;
  userId: string;
  /**
   * `conversation`: the account has a password or second factor (or other organisations), so
   * this session reaches the invited conversation only; `account`: a full sign-in.
   */
  scope: "account" | "conversation";
  /** Present on first use: keep it (cookie or storage) to come back without a code. */
  deviceToken?: string;
}

/** Creates, revokes and redeems invitations. */
export class InvitationService {
  private readonly opened = new Set<string>();

  constructor(
    private readonly deps: {
      directory: InvitationDirectory & AuditedChanges & Pick<AccountDirectory, "createUser" | "getUser" | "getUserByEmail"> & Pick<OrganisationDirectory, "listMemberships">;
      mailer: Mailer;
      sessions: SessionService;
      events: AccessEvents;
      /** Partner events; invitation events go to the starting organisation only (only it may see invitations). */
      partnerEvents: EventRecorder;
      /** Org audit chain of the inviting organisation. */
      orgAudit: OrgAuditRecorder;
      codeLimiter: AttemptLimiter;
      /** Device-code mails sent (counted as "attempts"), per invitation and per invited address. */
      codeMailLimiters: { perInvitation: AttemptLimiter; perAddress: AttemptLimiter };
      /** Keys the HMAC of the 6-digit codes, so a stolen table cannot be brute-forced offline. */
      secretsKey: Uint8Array;
      publicUrl: string;
      now: () => number;
      newId: (prefix: string) => string;
    },
  ) {}

  /** Creates an invitation and mails its link; returns the record (never the token). */
  async invite(request: { conversationId: string; conversationTitle: string; email: string; role: ParticipantRole; invitedByOrg: string; invitedBy: string; inviterName: string }): Promise<InvitationRecord> {
    const token = randomBytes(32).toString("base64url");
    const now = this.deps.now();
    const invitation = {
      id: this.deps.newId("inv"),
      conversationId: request.conversationId,
      email: request.email,
      role: request.role,
      invitedByOrg: request.invitedByOrg,
      invitedBy: request.invitedBy,
      createdAt: now,
      expiresAt: now + INVITATION_TTL_MS,
    };
    // The invitation and its "invitation.sent" entry commit together; the mail goes out after.
    await this.deps.orgAudit.recordWith(this.deps.directory, "createInvitation", [{ ...invitation, tokenHash: secretHash(token) }], request.invitedByOrg, {
      action: "invitation.sent",
      actor: `user:${request.invitedBy}`,
      target: invitation.id,
      details: { conversation: request.conversationId, role: request.role },
      personal: { email: request.email },
    });
    const link = `${this.deps.publicUrl}/invite/${token}`;
    await this.deps.mailer.send({
      to: request.email,
      subject: `${request.inviterName} invited you to "${request.conversationTitle}" on Parley`,
      conversationId: request.conversationId,
      text: [
        `${request.inviterName} invited you to the conversation "${request.conversationTitle}".`,
        "",
        `Open it here (the link is personal and valid for 14 days): ${link}`,
        "",
        "If you did not expect this, ignore this message.",
      ].join("\n"),
    });
    const { id, email, role, expiresAt } = invitation;
    const actor = { id: request.invitedBy, org: request.invitedByOrg };
    await this.deps.partnerEvents.record("invitation.sent", request.conversationId, { invitation: id, email, role, expiresAt, actor }, { audience: "starting-org" });
    return { ...invitation, revokedAt: null, userId: null, deviceHash: null };
  }

  /** Revokes an invitation; the invited person loses the access it gave. */
  async revoke(invitation: InvitationRecord, actor: EventActor): Promise<void> {
    // Revoked, the person it let in removed, and the entry written: together or not at all.
    const steps: AuditedStep[] = [{ op: "revokeInvitation", args: [invitation.id, this.deps.now()] }];
    if (invitation.userId) steps.push({ op: "removePerson", args: [invitation.conversationId, invitation.userId], optional: true });
    const revoked = await this.deps.orgAudit.recordStepsWith(this.deps.directory, steps, [
      {
        orgs: invitation.invitedByOrg,
        event: {
          action: "invitation.revoked",
          actor: actor.id.startsWith("key:") ? `api-key:${actor.id.slice(4)}` : `user:${actor.id}`,
          target: invitation.id,
          details: { conversation: invitation.conversationId },
        },
      },
    ]);
    if (!revoked.changed) return; // revoked already (by a simultaneous request, which recorded it)
    this.deps.events.emit({ kind: "conversation-access-changed", conversationId: invitation.conversationId });
    await this.deps.partnerEvents.record("invitation.revoked", invitation.conversationId, { invitation: invitation.id, actor }, { audience: "starting-org" });
  }

  /** The live invitation behind a link token, or InvitationInvalid (unknown, expired, revoked). */
  async lookup(token: string): Promise<InvitationRecord> {
    const invitation = await this.deps.directory.getInvitationByTokenHash(secretHash(token));
    if (!invitation || invitation.revokedAt !== null || invitation.expiresAt <= this.deps.now()) {
      throw new ParleyError(ErrorCode.InvitationInvalid, "this invitation link is unknown, expired or revoked");
    }
    // Reported once, on whichever comes first: the landing page or a sign-in.
    const once = `invitation.opened:${invitation.id}`;
    await this.deps.partnerEvents.record("invitation.opened", invitation.conversationId, { invitation: invitation.id }, { audience: "starting-org", once });
    // Once per invitation per node: the landing page may be reloaded many times, and each
    // redemption looks the link up again; the first open is the fact worth a chain entry.
    if (!this.opened.has(invitation.id)) {
      await this.deps.orgAudit.recordOrgEvent(invitation.invitedByOrg, {
        action: "invitation.opened",
        actor: "invitee",
        target: invitation.id,
        details: { conversation: invitation.conversationId },
      });
      if (this.opened.size >= 10_000) this.opened.clear();
      this.opened.add(invitation.id);
    }
    return invitation;
  }

  /**
   * Redeems a link (always by POST: mail scanners prefetch GET links). First use signs the
   * person in and binds this device; later uses need this device's token or an emailed code.
   * Every sign-in commits with its "login.succeeded" entry in the invitee's organisation chain
   * (and what it spends: the binding with its "invitation.used" entry, a device code): when the
   * audit trail cannot take them, there is no session and nothing is spent (StoreUnavailable).
   */
  async accept(token: string, proof: { deviceToken?: string; code?: string }, from: { ip: string; userAgent: string }): Promise<InvitationSignIn> {
    const invitation = await this.lookup(token);
    const { directory } = this.deps;
    if (invitation.userId === null) {
      const user = (await directory.getUserByEmail(invitation.email)) ?? (await this.createInvitedUser(invitation.email));
      const deviceToken = randomBytes(32).toString("base64url");
      // Bound to this person and device with its "invitation.used" entry, or not at all.
      const used = { action: "invitation.used", actor: `user:${user.id}`, target: invitation.id, details: { conversation: invitation.conversationId, user: user.id } } as const;
      const bind: AuditedStep = { op: "bindInvitation", args: [invitation.id, user.id, secretHash(deviceToken), this.deps.now()] };
      const signIn = await this.signIn(user.id, invitation, from, { steps: [bind], events: [{ orgs: invitation.invitedByOrg, event: used }] });
      if (signIn) {
        this.deps.events.emit({ kind: "conversation-access-changed", conversationId: invitation.conversationId });
        await this.deps.partnerEvents.record("invitation.accepted", invitation.conversationId, { invitation: invitation.id, user: user.id }, { audience: "starting-org" });
        return { ...signIn, conversationId: invitation.conversationId, userId: user.id, deviceToken };
      }
      // Someone redeemed it at the same moment: treat this as a second device.
      return this.accept(token, proof, from);
    }
    const userId = invitation.userId;
    if (proof.deviceToken && invitation.deviceHash === secretHash(proof.deviceToken)) {
      const signIn = await this.signIn(userId, invitation, from, { steps: [], events: [] });
      if (signIn) return { ...signIn, conversationId: invitation.conversationId, userId };
    }
    if (proof.code) {
      const key = `invitation:${invitation.id}`;
      const now = this.deps.now();
      const gate = await this.deps.codeLimiter.check(key);
      if (!gate.allowed) throw new RateLimitedError("too many wrong codes; wait", gate.retryAfterMs / 1000);
      // The code is spent with the session and its entry: refused, it stays good.
      const spend: AuditedStep = { op: "consumeInvitationCode", args: [invitation.id, this.codeHash(invitation.id, proof.code), now] };
      const signIn = await this.signIn(userId, invitation, from, { steps: [spend], events: [] });
      if (signIn) {
        await this.deps.codeLimiter.succeed(key);
        return { ...signIn, conversationId: invitation.conversationId, userId };
      }
      await this.deps.codeLimiter.fail(key);
      throw new ParleyError(ErrorCode.InvalidTwoFactorCode, "the code is wrong, expired or already used");
    }
    await this.sendDeviceCode(invitation);
    throw new ParleyError(ErrorCode.DeviceCodeRequired, "this link was already used on another device: enter the code we just emailed");
  }

  /**
   * A code mail costs the link's holder nothing but fills the invited mailbox: a few per
   * invitation and per address in a window, then 429 until it passes (the code sent is still good).
   */
  private async admitCodeMail(invitation: InvitationRecord): Promise<void> {
    const keys = [
      [this.deps.codeMailLimiters.perInvitation, `invitation:${invitation.id}`],
      [this.deps.codeMailLimiters.perAddress, `address:${invitation.email.toLowerCase()}`],
    ] as const;
    for (const [limiter, key] of keys) {
      const gate = await limiter.check(key);
      if (!gate.allowed) throw new RateLimitedError("a code was e-mailed a moment ago: use it, or wait before asking for another", gate.retryAfterMs / 1000);
    }
    for (const [limiter, key] of keys) await limiter.fail(key);
  }

  private async sendDeviceCode(invitation: InvitationRecord): Promise<void> {
    await this.admitCodeMail(invitation);
    const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
    await this.deps.directory.addInvitationCode(invitation.id, this.codeHash(invitation.id, code), this.deps.now() + DEVICE_CODE_TTL_MS);
    await this.deps.mailer.send({
      to: invitation.email,
      subject: "Your Parley sign-in code",
      text: `Your code is ${code}. It is valid for 10 minutes. If you did not try to sign in, ignore this message.`,
    });
  }

  private codeHash(invitationId: string, code: string): string {
    return createHmac("sha256", this.deps.secretsKey).update(`${invitationId}:${code.trim()}`).digest("hex");
  }

  /** A password-less account with its personal organisation, created with that organisation's first entry, as a sign-up's is. */
  private async createInvitedUser(email: string): Promise<{ id: string }> {
    const id = this.deps.newId("usr");
    const domain = email.split("@")[1] ?? email;
    const org = { id: this.deps.newId("org"), name: domain };
    const created = { action: "organisation.created", actor: `user:${id}`, target: org.id, details: { role: "owner", via: "invitation" }, personal: { email } } as const;
    await this.deps.orgAudit.recordWith(this.deps.directory, "createUser", [{ id, email, name: email, passwordHash: null }, org, this.deps.now()], org.id, created);
    return { id };
  }

  /**
   * The session a link gives: proof of the mailbox, nothing more. Where the mailbox is all the
   * account has (no password, no second factor, no organisation but its own personal one: an
   * account an invitation link created), that is a full sign-in as before. Any other account is
   * reached only through its password and second factor: the link opens the invited
   * conversation alone (a session scoped to it, which stays scoped when refreshed).
   */
  private async signIn(
    userId: string,
    invitation: InvitationRecord,
    from: { ip: string; userAgent: string },
    spends: { steps: AuditedStep[]; events: OrgEventFor[] },
  ): Promise<(TokenPair & { scope: "account" | "conversation" }) | null> {
    const [user, memberships] = await Promise.all([this.deps.directory.getUser(userId), this.deps.directory.listMemberships(userId)]);
    const [membership] = memberships;
    if (!user || !membership) throw new ParleyError(ErrorCode.InvalidCredentials, "this account has no organisation");
    const mailboxOnly = user.passwordHash === null && !user.totpEnabled && memberships.length === 1 && membership.role === "owner";
    const scope = mailboxOnly ? "account" : "conversation";
    const session = this.deps.sessions.prepare(userId, membership.orgId, mailboxOnly ? {} : { conversationScope: invitation.conversationId });
    // In the chain of the organisation the session is for (the invitee's), as a password sign-in
    // is; the inviting organisation's chain has the link's first use ("invitation.used").
    const login: OrgEventFor = {
      orgs: membership.orgId,
      event: { action: "login.succeeded", actor: `user:${userId}`, target: userId, details: { invitation: invitation.id, conversation: invitation.conversationId, scope }, personal: from },
    };
    let outcome: AuditedOutcome;
    try {
      outcome = await this.deps.orgAudit.recordStepsWith(this.deps.directory, [...spends.steps, session.step], [...spends.events, login]);
    } catch (error) {
      if (error instanceof ParleyError || (error instanceof DirectoryError && error.code !== "unavailable")) throw error;
      throw new ParleyError(ErrorCode.StoreUnavailable, "the sign-in could not be recorded in the audit trail, so it did not happen; nothing changed, try again");
    }
    if (!outcome.changed) return null;
    return { ...(await session.tokens()), scope };
  }
}
