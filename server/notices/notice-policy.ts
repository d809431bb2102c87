// Which organisation audit events are security notices, and what each notice says: a plain
// function from an audit event to a notice (or none), so the policy reads as one table and the
// recorder, the mail and the event stream stay out of it.

import type { OrgEventInput } from "../directory/org-recorder.ts";

/** A notice before it is recorded and sent. */
export interface NoticeInput {
  /** The kind, e.g. `sign-in.new-device` (stable: partners filter on it). */
  notice: string;
  summary: string;
  advice: string;
  subject: string;
  from: { ip: string | null; userAgent: string | null };
  /**
   * What makes it "once": a second notice with the same key is not recorded or sent again,
   * whichever node raises it. Includes the organisation.
   */
  onceKey: string;
  /** Recorded in the history and on the stream, but not e-mailed (a device seen at sign-up). */
  quiet?: boolean;
}

const REVIEW_MEMBERS = "Review the organisation's members and their roles; if you did not expect this, remove the access and tell your security contact.";

/** The notice an audit event raises, or null. `seenAt` buckets repeated failures into one notice per window. */
export function noticeFor(org: string, event: OrgEventInput, at: number, deviceKey: string | null): NoticeInput | null {
  const from = { ip: event.personal?.ip ?? null, userAgent: event.personal?.userAgent ?? null };
  const subject = event.target ?? "";
  const base = { subject, from };
  switch (event.action) {
    case "login.succeeded":
      if (!deviceKey) return null;
      return {
        ...base,
        notice: "sign-in.new-device",
        summary: `${event.actor} signed in from a device or address not seen before for this account`,
        advice: "If this was not them, sign them out everywhere (they change their password) and check the organisation's audit trail.",
        onceKey: `${org}:device:${subject}:${deviceKey}`,
      };
    case "2fa.disabled":
      return {
        ...base,
        notice: "second-factor.removed",
        summary: `Two-factor authentication was turned off for ${subject}`,
        advice: "If this was not expected, have them enrol again at once and review their recent sign-ins.",
        onceKey: `${org}:2fa-off:${subject}:${at}`,
      };
    case "webauthn.removed":
      return {
        ...base,
        notice: "security-key.removed",
        summary: `A security key (${String(event.details?.name ?? subject)}) was removed from ${event.actor.replace("user:", "")}'s account`,
        advice: "If this was not expected, have them check their account's keys and sign-ins at once.",
        onceKey: `${org}:key-removed:${subject}`,
      };
    case "api-key.created":
      return {
        ...base,
        notice: "api-key.created",
        summary: `An API key (${subject}) was created by ${event.actor}`,
        advice: "If nobody in your organisation created it, revoke it now.",
        onceKey: `${org}:api-key:${subject}`,
      };
    case "member.role-changed":
      return { ...base, notice: "member.role-changed", summary: `${subject}'s role became ${String(event.details?.role)} (by ${event.actor})`, advice: REVIEW_MEMBERS, onceKey: `${org}:role:${subject}:${at}` };
    case "member.removed":
      return { ...base, notice: "member.removed", summary: `${subject} was removed from the organisation by ${event.actor}`, advice: REVIEW_MEMBERS, onceKey: `${org}:removed:${subject}:${at}` };
    case "member.joined":
      return { ...base, notice: "member.joined", summary: `${event.actor} joined the organisation as ${String(event.details?.role)}`, advice: REVIEW_MEMBERS, onceKey: `${org}:joined:${event.actor}:${subject}` };
    case "support.used":
      return {
        ...base,
        notice: "support-access.granted",
        summary: `Support access ${subject} to conversation ${String(event.details?.conversation)} was granted and is in use (${event.actor})`,
        advice: "Support access is read-only and ends by itself; ask your Parley operator to revoke it if you did not ask for support.",
        onceKey: `${org}:support:${subject}`,
      };
    default:
      return null;
  }
}

/** The notice for repeated failed sign-ins of one account (raised when its throttle locks). */
export function repeatedFailuresNotice(org: string, userId: string, from: NoticeInput["from"], window: number): NoticeInput {
  return {
    notice: "sign-in.repeated-failures",
    summary: `Repeated failed sign-ins for ${userId}: the account is locked for a while`,
    advice: "If this was not them, someone is guessing the password: they choose a new, unique one and enrol two-factor.",
    subject: userId,
    from,
    onceKey: `${org}:failures:${userId}:${window}`,
  };
}

/** The notice for an audit chain that failed verification. */
export function auditFailureNotice(org: string, chain: string, detail: string, at: number): NoticeInput {
  return {
    notice: "audit.verification-failed",
    summary: `The audit trail ${chain} failed verification: ${detail}`,
    advice: "Treat this as a possible breach: keep the data directory as it is, export the audit trail, and tell your security contact.",
    subject: chain,
    from: { ip: null, userAgent: null },
    onceKey: `${org}:audit:${chain}:${detail}:${Math.floor(at / 3_600_000)}`,
  };
}

/** The notice for a scheduled backup or restore drill that failed (server-wide: every organisation gets it). */
export function backupFailureNotice(org: string, kind: "backup" | "drill", detail: string, at: number): NoticeInput {
  return {
    notice: kind === "backup" ? "backup.failed" : "backup.drill-failed",
    summary: kind === "backup" ? `The scheduled backup failed: ${detail}` : `The scheduled restore drill failed: ${detail}`,
    advice: "Your data is intact on the live server, but the latest backup cannot be relied on: your Parley operator must fix it and take a new backup.",
    subject: "",
    from: { ip: null, userAgent: null },
    onceKey: `${org}:${kind}:${at}`,
  };
}
