// Security notices: things an organisation's owners and admins must hear about (a sign-in from
// a new device, repeated failed sign-ins, a second factor removed, support access, a new API
// key, membership changes, a failed audit verification). Each is recorded once as a
// `security.notice` partner event (so it reaches the event stream and webhooks, and forms the
// organisation's notice history) and, when first recorded, e-mailed to the owners and admins.

import { createHmac } from "node:crypto";
import type { EventData, ParleyEvent } from "../../protocol/index.ts";
import type { OrgEventInput } from "../directory/org-recorder.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { EventNotifier } from "../events/event-notifier.ts";
import { newEventId } from "../events/event-recorder.ts";
import type { EventStore } from "../events/event-store.ts";
import type { Logger } from "../platform/logger.ts";
import type { Mailer } from "../mail/mailer.ts";
import { type NoticeInput, noticeFor } from "./notice-policy.ts";

/** Dependencies of {@link SecurityNotices}. */
export interface SecurityNoticesDeps {
  store: Pick<EventStore, "append" | "read">;
  notifier: EventNotifier;
  directory: Pick<OrganisationDirectory, "listMembers">;
  mailer: Mailer;
  logger: Logger;
  now: () => number;
  /** Key of the device fingerprints (never stored in clear: address and user agent are personal). */
  fingerprintKey: Uint8Array;
  /** Counts each notice raised (metrics). */
  onRaised?: (notice: string) => void;
}

/** Raises, records, sends and lists security notices. */
export class SecurityNotices {
  constructor(private readonly deps: SecurityNoticesDeps) {}

  /** Called for every organisation audit event once it is recorded: raises the notice it implies. */
  observe(org: string, event: OrgEventInput): void {
    const device = event.action === "login.succeeded" ? this.fingerprint(event) : null;
    const notice = noticeFor(org, event, this.deps.now(), device);
    if (notice) void this.raise(org, notice);
  }

  /** Remembers a person's device without a notice (the one they signed up from). */
  rememberDevice(org: string, userId: string, from: { ip: string; userAgent: string }): Promise<boolean> {
    const event: OrgEventInput = { action: "login.succeeded", actor: `user:${userId}`, target: userId, personal: from };
    const notice = noticeFor(org, event, this.deps.now(), this.fingerprint(event));
    if (!notice) return Promise.resolve(false);
    return this.raise(org, { ...notice, notice: "sign-in.first-device", summary: `${event.actor} signed up from this device`, advice: "Nothing to do.", quiet: true });
  }

  /**
   * Records the notice (once per its key, across nodes) and e-mails owners and admins when it was
   * new. Never throws: a notice that cannot be recorded is logged as a security event instead.
   */
  async raise(org: string, notice: NoticeInput): Promise<boolean> {
    const at = this.deps.now();
    const data: EventData["security.notice"] = { notice: notice.notice, summary: notice.summary, advice: notice.advice, at, from: notice.from, subject: notice.subject };
    try {
      // A quiet notice (a device remembered) goes to no stream: only its once-key is kept.
      const orgs = notice.quiet ? [] : [org];
      const appended = await this.deps.store.append([{ id: newEventId(), type: "security.notice", conversation: "", occurredAt: at, data, orgs, once: notice.onceKey }], at);
      if (appended.length === 0) return false;
      for (const { org: receiver, cursor } of appended[0].cursors) this.deps.notifier.published(receiver, cursor);
      this.deps.logger.warn({ security: "notice", org, notice: notice.notice, subject: notice.subject }, "security notice");
      this.deps.onRaised?.(notice.notice);
      if (!notice.quiet) await this.mail(org, data);
      return true;
    } catch (error) {
      this.deps.logger.error({ err: error, security: "notice-failed", org, notice: notice.notice }, "security notice not recorded or sent");
      return false;
    }
  }

  /** The organisation's notices, oldest first, paged by cursor. */
  async history(org: string, after: number, limit: number): Promise<{ items: ParleyEvent[]; nextCursor: number; hasMore: boolean }> {
    const read = await this.deps.store.read(org, after, limit, ["security.notice"]);
    if (read.status !== "ok") return { items: [], nextCursor: after, hasMore: false };
    const last = read.events[read.events.length - 1];
    const items = read.events.map((event) => JSON.parse(event.json) as ParleyEvent);
    return { items, nextCursor: last ? last.cursor : after, hasMore: read.events.length === limit };
  }

  private async mail(org: string, data: EventData["security.notice"]): Promise<void> {
    const members = await this.deps.directory.listMembers(org);
    const from = [data.from.ip && `address ${data.from.ip}`, data.from.userAgent && `browser "${data.from.userAgent.slice(0, 200)}"`].filter(Boolean).join(", ");
    const text = [
      `Security notice for your Parley organisation (${data.notice})`,
      "",
      `What happened: ${data.summary}.`,
      `When: ${new Date(data.at).toISOString()}`,
      `From: ${from || "not known (the server or an operator)"}`,
      "",
      `What to do: ${data.advice}`,
      "",
      "You get this because you are an owner or admin of the organisation. The notice history is at GET /v1/organisations/<org>/security-notices.",
    ].join("\n");
    for (const member of members) {
      if (member.role !== "owner" && member.role !== "admin") continue;
      await this.deps.mailer
        .send({ to: member.email, subject: `Parley security notice: ${data.notice}`, text })
        .catch((error: unknown) => this.deps.logger.error({ err: error, security: "notice-mail-failed", org }, "security notice not mailed"));
    }
  }

  private fingerprint(event: OrgEventInput): string | null {
    const { ip, userAgent } = event.personal ?? {};
    if (!ip) return null;
    return createHmac("sha256", this.deps.fingerprintKey).update(`parley/device\0${ip}\0${userAgent ?? ""}`).digest("hex").slice(0, 32);
  }
}
