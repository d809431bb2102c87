// Sign-up that tells nobody which addresses have an account. Every request gets the same answer
// after the same work: the password hashed, a pending sign-up stored, one mail sent. A new
// address gets a single-use link (24 hours, stored only as a hash) that creates the organisation
// and its owner when the mailbox confirms it; an address with an account gets a notice instead
// (no link), and its account stays exactly as it is.

import { randomBytes } from "node:crypto";
import { ErrorCode } from "../../protocol/index.ts";
import type { AttemptLimiter } from "../auth/attempt-limiter.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import { type AuditedChanges, type AuditedChangesOf, DirectoryError } from "../directory/directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { OrgAuditRecorder } from "../directory/org-recorder.ts";
import type { PendingSignup } from "../directory/directory-types.ts";
import { ParleyError } from "../platform/errors.ts";
import { secretHash } from "../http/principal.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { SessionService, TokenPair } from "./session-service.ts";

/** How long a sign-up link may be confirmed. */
export const SIGNUP_LINK_TTL_MS = 24 * 3600 * 1000;

/** Too many sign-up mails to this address lately: the same for every address, with or without an account. */
export class SignUpMailThrottled extends ParleyError {
  constructor(readonly retryAfterMs: number) {
    super(ErrorCode.RateLimited, "a sign-up mail went to this address a moment ago: use it, or wait before asking again");
  }
}

/** A confirmed sign-up: the new owner and their organisation. */
export interface NewOwner {
  user: { id: string; email: string; name: string };
  organisation: { id: string; name: string };
}

/** Takes sign-up requests and confirms them from the mailed link. */
export class SignUpService {
  constructor(
    private readonly deps: {
      directory: Pick<OrganisationDirectory, "createPendingSignup" | "getPendingSignup"> &
        Pick<AccountDirectory, "getUserByEmail"> &
        AuditedChangesOf<"confirmPendingSignup"> &
        Pick<AuditedChanges, "auditedSteps">;
      /** Writes the new organisation's first entry, "organisation.created", in the transaction that creates it; the first session's "login.succeeded" with it. */
      orgAudit: Pick<OrgAuditRecorder, "recordWith" | "recordStepsWith">;
      sessions: Pick<SessionService, "prepare">;
      mailer: Mailer;
      hasher: PasswordHasher;
      /** Sign-up mails per address (counted as "attempts"): a mailbox cannot be flooded through sign-up. */
      mailLimiter: AttemptLimiter;
      /** Says which kind of mail went out, keyed by a pseudonym of the address (the server's log only). */
      log: (fields: Record<string, unknown>, message: string) => void;
      pseudonym: (value: string) => string;
      publicUrl: string;
      now: () => number;
      newId: (prefix: string) => string;
    },
  ) {}

  /**
   * Records a sign-up request and mails the address. Resolves the same way for every address
   * (the caller answers 202 either way); the password must already satisfy the policy.
   */
  async request(input: { email: string; password: string; name: string; organisation: string }): Promise<void> {
    const email = input.email.toLowerCase();
    const key = `address:${email}`;
    const gate = await this.deps.mailLimiter.check(key);
    if (!gate.allowed) throw new SignUpMailThrottled(gate.retryAfterMs);
    await this.deps.mailLimiter.fail(key);
    // The same work on both paths, so neither the answer nor its time says which one ran: the
    // hash, the lookup, one stored row (for a known address under a token nobody ever sees), one mail.
    const passwordHash = await this.deps.hasher.hash(input.password);
    const existing = await this.deps.directory.getUserByEmail(email);
    const token = randomBytes(32).toString("base64url");
    const now = this.deps.now();
    await this.deps.directory.createPendingSignup(
      { tokenHash: secretHash(token), email, name: input.name, organisation: input.organisation, passwordHash, createdAt: now, expiresAt: now + SIGNUP_LINK_TTL_MS },
      now,
    );
    const emailHash = this.deps.pseudonym(email);
    if (existing) {
      await this.deps.mailer.send({ to: email, subject: "Someone tried to sign up to Parley with your address", text: this.noticeText() });
      this.deps.log({ security: "signup-existing-address", emailHash }, "sign-up for an address that has an account: its owner was told");
      return;
    }
    await this.deps.mailer.send({ to: email, subject: "Confirm your Parley sign-up", text: this.confirmationText(`${this.deps.publicUrl}/signup/${token}`, input.organisation) });
    this.deps.log({ emailHash }, "sign-up confirmation mailed");
  }

  /** The live sign-up behind a link (the page shows it; nothing is used), or SignupLinkInvalid. */
  async lookup(token: string): Promise<PendingSignup> {
    const pending = await this.deps.directory.getPendingSignup(secretHash(token), this.deps.now());
    if (!pending) throw invalidLink();
    return pending;
  }

  /**
   * Spends the link and creates the organisation with its owner (always by POST: mail scanners
   * fetch GET links), with the organisation chain's first entry in the same transaction: when
   * that entry cannot be written nothing is created and the link still works (StoreUnavailable).
   * Conflict when the address got an account since the link was mailed (no entry then: there is
   * no new organisation to record it in).
   */
  async confirm(token: string): Promise<NewOwner> {
    const tokenHash = secretHash(token);
    const pending = await this.deps.directory.getPendingSignup(tokenHash, this.deps.now());
    if (!pending) throw invalidLink();
    const ids = { userId: this.deps.newId("usr"), orgId: this.deps.newId("org") };
    const created = { action: "organisation.created", actor: `user:${ids.userId}`, target: ids.orgId, details: { role: "owner" }, personal: { email: pending.email } } as const;
    let confirmed: Awaited<ReturnType<OrganisationDirectory["confirmPendingSignup"]>>;
    try {
      confirmed = await this.deps.orgAudit.recordWith(this.deps.directory, "confirmPendingSignup", [tokenHash, ids, this.deps.now()], ids.orgId, created);
    } catch (error) {
      if (error instanceof ParleyError || (error instanceof DirectoryError && error.code !== "unavailable")) throw error;
      this.deps.log({ err: error, security: "signup-unaudited" }, "sign-up refused: its audit entry could not be written");
      throw new ParleyError(ErrorCode.StoreUnavailable, "the sign-up could not be recorded in the audit trail, so nothing was created; the link still works, try again");
    }
    if (!confirmed) throw invalidLink();
    // Only the mailbox's holder gets here: telling them their own address has an account is no leak.
    if (confirmed.status === "exists") throw new ParleyError(ErrorCode.Conflict, "this address has a Parley account already: sign in instead");
    return { user: confirmed.user, organisation: confirmed.organisation };
  }

  /**
   * Signs the new owner in on the device that confirmed: the session with its "login.succeeded"
   * entry (`signup: true`), as every sign-in. Refused, there is no session (StoreUnavailable); the
   * organisation exists by then, and the owner signs in with their password.
   */
  async startSession(owner: NewOwner, from: { ip: string; userAgent: string }): Promise<TokenPair> {
    const session = this.deps.sessions.prepare(owner.user.id, owner.organisation.id);
    const event = { action: "login.succeeded", actor: `user:${owner.user.id}`, target: owner.user.id, details: { signup: true }, personal: from } as const;
    try {
      await this.deps.orgAudit.recordStepsWith(this.deps.directory, [session.step], [{ orgs: owner.organisation.id, event }]);
    } catch (error) {
      if (error instanceof ParleyError || (error instanceof DirectoryError && error.code !== "unavailable")) throw error;
      throw new ParleyError(ErrorCode.StoreUnavailable, "your organisation was created, but the sign-in could not be recorded in the audit trail, so it did not happen: sign in with your password");
    }
    return session.tokens();
  }

  private confirmationText(link: string, organisation: string): string {
    return [
      `Someone (we hope you) asked to create the organisation "${organisation}" on Parley with this address.`,
      "",
      `Confirm it here (the link works once and is valid for 24 hours): ${link}`,
      "",
      "If you did not sign up, ignore this message: nothing is created without this link.",
    ].join("\n");
  }

  private noticeText(): string {
    return [
      "Someone asked to sign up to Parley with this address, which already has a Parley account.",
      "Nothing was created and your account is unchanged.",
      "",
      `If it was you: sign in at ${this.deps.publicUrl} instead.`,
      "If it was not you, you can ignore this message.",
    ].join("\n");
  }
}

function invalidLink(): ParleyError {
  return new ParleyError(ErrorCode.SignupLinkInvalid, "this sign-up link is unknown, expired or already used: sign up again");
}
