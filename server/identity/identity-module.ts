// Wires identity and access: the directory, password hashing, sign-in sessions, invitations,
// mail, and the checks sockets and HTTP share. The composition root calls openIdentity() once
// and registers the routes it returns; everything else reaches identity through what it returns.

import path from "node:path";
import type { Role } from "../../protocol/index.ts";
import { AttemptLimiter } from "../auth/attempt-limiter.ts";
import type { OrgAuditRecorder } from "../directory/org-recorder.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import type { MasterKeyring } from "../crypto/master-key.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { loadOrCreateSecretsKey } from "../crypto/secrets-key.ts";
import { type HostTokenVerifier, hostTokenVerifier } from "../auth/host-tokens.ts";
import type { Config } from "../platform/config.ts";
import type { DirectoryHandle } from "../directory/directory.ts";
import { openDirectory } from "../directory/open-directory.ts";
import {
  type AnyPrincipal,
  authenticateCredential,
  liveSupportGrant,
  type PrincipalDeps,
  SOCKET_PRINCIPALS,
  type SocketAuthentication,
} from "../http/principal.ts";
import type { RouteDefinition } from "../http/route.ts";
import { authRoutes, newId } from "./auth-routes.ts";
import { conversationRoutes } from "./conversation-routes.ts";
import { invitationRoutes } from "./invitation-routes.ts";
import { membershipRoutes } from "./membership-routes.ts";
import { organisationRoutes } from "./organisation-routes.ts";
import { signupRoutes } from "./signup-routes.ts";
import type { HttpServices } from "./http-services.ts";
import type { LimiterBackend } from "../limits/limiter-backend.ts";
import type { Logger } from "../platform/logger.ts";
import type { WritePath } from "../writes/write-path.ts";
import { loadDkimSigning } from "../mail/dkim.ts";
import type { Mailer } from "../mail/mailer.ts";
import { OutboxMailer } from "../mail/outbox-mailer.ts";
import { SmtpMailer } from "../mail/smtp-mailer.ts";
import type { DocumentCache } from "../documents/document-cache.ts";
import type { EventRecorder } from "../events/event-recorder.ts";
import { AccessControl } from "./access-control.ts";
import { AccessEvents } from "../bus/access-events.ts";
import { InvitationService } from "./invitation-service.ts";
import { SignUpService } from "./signup-service.ts";
import { SessionService } from "./session-service.ts";
import { socketAuthentication } from "./socket-identity.ts";
import type { Clock } from "../platform/clock.ts";

/** Identity as the rest of the server sees it. */
export interface Identity {
  directory: DirectoryHandle;
  access: AccessControl;
  events: AccessEvents;
  services: HttpServices;
  routes: RouteDefinition[];
  /** The configured host application's token verifier (null: none configured). */
  hostTokens: HostTokenVerifier | null;
  /** What turning a credential into a principal needs (http/principal.ts): the HTTP router and the event stream use it too. */
  principals: PrincipalDeps;
  /**
   * Checks a socket's credential now: a Parley access token, a host-application token or an API
   * key (`pk_…`); signature, session not signed out, membership, IP allowlist, 2FA rule.
   */
  authenticate(token: string, ip: string): Promise<SocketAuthentication>;
  /** The principal's role in a conversation now (the grants of a token that lists them, else the directory). */
  resolveRole(principal: AnyPrincipal, conversation: string): Promise<Role | null>;
  /**
   * True while a connected principal may stay connected: its session not signed out, still a
   * member, its support grant live. Nodes re-check their sockets with this periodically, so an
   * access change lost between nodes (pub/sub is at most once) only delays its effect.
   */
  stillValid(principal: AnyPrincipal): Promise<boolean>;
  close(): Promise<void>;
}

/** The API key scopes that let a key read conversations, and the one that lets it write. */
const READ_SCOPES: readonly string[] = ["conversations:read", "conversations:write"];
const WRITE_SCOPE = "conversations:write";

async function createMailer(config: Config, logger: Logger, now: Clock): Promise<Mailer> {
  const dkim = config.identity.dkim ? await loadDkimSigning(config.identity.dkim) : undefined;
  const smtp = config.identity.smtpUrl;
  if (!smtp) {
    return new OutboxMailer(path.join(config.dataDir, "outbox"), logger, {
      from: config.identity.mailFrom,
      dkim,
      retentionMs: config.identity.outboxRetentionDays * 24 * 3_600_000,
      now,
    });
  }
  const url = new URL(smtp);
  return new SmtpMailer({
    host: url.hostname,
    port: Number(url.port || (url.protocol === "smtps:" ? 465 : 587)),
    secure: url.protocol === "smtps:",
    user: url.username ? decodeURIComponent(url.username) : undefined,
    pass: url.password ? decodeURIComponent(url.password) : undefined,
    from: config.identity.mailFrom,
    dkim,
  });
}

/** Opens the directory and builds the identity services. */
export async function openIdentity(
  config: Config,
  deps: {
    keys: ServerKeys;
    /** Unwraps the secrets key (secrets-key.ts). */
    masterKeys: MasterKeyring;
    logger: Logger; writePath: WritePath; cache: DocumentCache; now: Clock; partnerEvents: EventRecorder; orgAudit: OrgAuditRecorder;
    /** When each conversation last changed (the store's log heads), for conversation lists. */
    lastActivity: HttpServices["lastActivity"];
    /** Where sign-in and code throttles count (shared between nodes with Redis). */
    limiters: LimiterBackend;
  },
): Promise<Identity> {
  const now = deps.now;
  const directoryHandle = await openDirectory({ dataDir: config.dataDir, databaseUrl: config.store.databaseUrl });
  const directory = directoryHandle.directory;
  const events = new AccessEvents();
  const access = new AccessControl(directory);
  const secretsKey = await loadOrCreateSecretsKey(config.keysDir, deps.masterKeys);
  const sessions = new SessionService({
    directory,
    keys: deps.keys,
    tokens: config.tokens,
    settings: { accessTtlSeconds: config.identity.accessTokenTtlSeconds, refreshTtlSeconds: config.identity.refreshTokenTtlSeconds, reuseGraceSeconds: config.identity.refreshReuseGraceSeconds },
    events,
    now,
  });
  const mailer = await createMailer(config, deps.logger, now);
  const services: HttpServices = {
    config,
    keys: deps.keys,
    directory,
    access,
    sessions,
    events,
    partnerEvents: deps.partnerEvents,
    orgAudit: deps.orgAudit,
    hasher: new PasswordHasher({ ...config.identity.argon2, maxConcurrent: config.identity.maxConcurrentHashes }),
    passwordPolicy: { minimumScore: config.identity.passwordMinScore },
    loginLimiter: new AttemptLimiter(deps.limiters, "login", { maxAttempts: 10, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000 }),
    codeLimiter: new AttemptLimiter(deps.limiters, "code", { maxAttempts: 5, windowMs: 10 * 60_000, lockoutMs: 10 * 60_000 }),
    secretsKey,
    mailer,
    writePath: deps.writePath,
    cache: deps.cache,
    lastActivity: deps.lastActivity,
    logger: deps.logger,
    now,
  };
  const invitations = new InvitationService({
    directory,
    mailer,
    sessions,
    events,
    partnerEvents: deps.partnerEvents,
    orgAudit: deps.orgAudit,
    codeLimiter: services.codeLimiter,
    // Three code mails per invitation and five per address in ten minutes: enough for a person
    // with a few devices, too few to flood a mailbox by replaying a used link.
    codeMailLimiters: {
      perInvitation: new AttemptLimiter(deps.limiters, "code-mail-invitation", { maxAttempts: 3, windowMs: 10 * 60_000, lockoutMs: 10 * 60_000 }),
      perAddress: new AttemptLimiter(deps.limiters, "code-mail-address", { maxAttempts: 5, windowMs: 10 * 60_000, lockoutMs: 10 * 60_000 }),
    },
    secretsKey,
    publicUrl: config.identity.publicUrl,
    now,
    newId,
  });
  const signups = new SignUpService({
    directory,
    orgAudit: deps.orgAudit,
    sessions,
    mailer,
    hasher: services.hasher,
    // Five sign-up mails per address an hour, whether it has an account or not: enough to retry,
    // too few to flood a mailbox through the sign-up form.
    mailLimiter: new AttemptLimiter(deps.limiters, "signup-mail-address", { maxAttempts: 5, windowMs: 3_600_000, lockoutMs: 3_600_000 }),
    log: (fields, message) => deps.logger.info(fields, message),
    pseudonym: (value) => deps.orgAudit.pseudonym(value),
    publicUrl: config.identity.publicUrl,
    now,
    newId,
  });
  const routes = [
    ...signupRoutes(services, signups),
    ...authRoutes(services),
    ...organisationRoutes(services),
    ...membershipRoutes(services),
    ...conversationRoutes(services, invitations),
    ...invitationRoutes(services, invitations),
  ];

  const hostTokens = config.hostTokens ? hostTokenVerifier(config.hostTokens, now) : null;

  const principals: PrincipalDeps = {
    keys: deps.keys,
    tokens: config.tokens,
    hostTokens,
    directory,
    recordApiKeyUse: (org, id) => deps.orgAudit.recordApiKeyUse(org, id),
    recordSupportUse: async (grant, ip) => {
      deps.logger.warn({ security: "support-access", grant: grant.id, operator: grant.operator, conversation: grant.conversationId, ip }, "support access");
      await deps.orgAudit.recordForConversationParties(directory, grant.conversationId, {
        action: "support.used",
        actor: `operator:${grant.operator}`,
        target: grant.id,
        details: { conversation: grant.conversationId },
        personal: { ip },
      });
    },
    now,
  };
  const liveGrant = (grantId: string) => liveSupportGrant(grantId, principals);

  /** A socket's credential, through the same path as HTTP's: the principal the socket carries. */
  const authenticate = async (token: string, ip: string): Promise<SocketAuthentication> =>
    socketAuthentication(await authenticateCredential(token, ip, principals, SOCKET_PRINCIPALS), now);

  const resolveRole = async (principal: AnyPrincipal, conversation: string): Promise<Role | null> => {
    switch (principal.kind) {
      case "support": {
        // Support is read-only whatever the token says, and only while its grant is live.
        const grant = await liveGrant(principal.grant.id);
        return grant?.conversationId === conversation ? "observer" : null;
      }
      case "conversationToken":
        return principal.token.grants.get(conversation) ?? null;
      case "apiKey": {
        const { scopes } = principal;
        if (!scopes.some((scope) => READ_SCOPES.includes(scope))) return null;
        const role = await access.roleFor({ orgId: principal.orgId }, conversation);
        return role === "writer" && !scopes.includes(WRITE_SCOPE) ? "observer" : role;
      }
      case "user":
        if (principal.conversationScope && principal.conversationScope !== conversation) return null;
        return access.roleFor({ orgId: principal.orgId, userId: principal.userId }, conversation);
    }
  };

  return {
    directory: directoryHandle,
    access,
    events,
    services,
    routes,
    hostTokens,
    principals,
    authenticate,
    resolveRole,
    async stillValid(principal) {
      switch (principal.kind) {
        case "support":
          return (await liveGrant(principal.grant.id)) !== null;
        case "conversationToken":
          return true;
        case "apiKey": {
          const key = await directory.getApiKey(principal.keyId);
          return key !== null && key.revokedAt === null && key.orgId === principal.orgId;
        }
        case "user":
          if (principal.sessionFamily && (await directory.isFamilyRevoked(principal.sessionFamily))) return false;
          return (await directory.getMembership(principal.orgId, principal.userId)) !== null;
      }
    },
    close: () => directoryHandle.close(),
  };
}
