// Everything the HTTP routes need, wired once by the composition root and passed in, so a
// route module imports no singletons. No route module takes all of it: each names the part it
// uses (`…RouteServices`: a Pick of these, the directory narrowed to the aggregates' operations it
// calls and the audited changes it makes, AuditedChangesOf), so its type says what it depends on.

import type { OrgAuditRecorder } from "../directory/org-recorder.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import type { PasswordHasher, PasswordPolicy } from "../auth/passwords.ts";
import type { AttemptLimiter } from "../auth/attempt-limiter.ts";
import type { Config } from "../platform/config.ts";
import type { Directory } from "../directory/directory.ts";
import type { EventRecorder } from "../events/event-recorder.ts";
import type { AccessControl } from "./access-control.ts";
import type { AccessEvents } from "../bus/access-events.ts";
import type { SessionService } from "./session-service.ts";
import type { Logger } from "../platform/logger.ts";
import type { WritePath } from "../writes/write-path.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { SecurityNotices } from "../notices/security-notices.ts";
import type { DocumentCache } from "../documents/document-cache.ts";

/** The services behind the HTTP API. */
export interface HttpServices {
  config: Config;
  keys: ServerKeys;
  directory: Directory;
  access: AccessControl;
  sessions: SessionService;
  events: AccessEvents;
  /** Records partner events (conversation, participant and invitation changes). */
  partnerEvents: EventRecorder;
  /** Records account and access events in organisation audit chains. */
  orgAudit: OrgAuditRecorder;
  hasher: PasswordHasher;
  passwordPolicy: PasswordPolicy;
  /** Failed sign-ins, per account and per address. */
  loginLimiter: AttemptLimiter;
  /** Failed second-factor and invitation codes, per account or invitation. */
  codeLimiter: AttemptLimiter;
  /** Key sealing TOTP secrets at rest. */
  secretsKey: Uint8Array;
  mailer: Mailer;
  writePath: WritePath;
  cache: DocumentCache;
  /** When each of these conversations last had a change (ms since the epoch); absent: none yet. */
  lastActivity(conversations: readonly string[]): Promise<Map<string, number>>;
  logger: Logger;
  /** The clock (injectable so expiry can be tested). */
  now: () => number;
  /** Security notices to owners and admins (set by the composition root once events are open). */
  notices?: SecurityNotices;
}
