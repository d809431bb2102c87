// Sign-in sessions: a short-lived access token (JWT) plus an opaque refresh token that rotates
// on every use. Refresh tokens are stored only as hashes; presenting a spent one revokes its
// whole family (the token was copied), and any revocation is announced so sockets close at once.
// One exception, the reuse grace: a client whose refresh answer was lost retries with the token
// it still has, and that one retry, soon enough and before the lost successor was used, is
// answered (SessionDirectory.rotateRefreshToken says exactly when).

import { randomBytes, randomUUID } from "node:crypto";
import { ErrorCode } from "../../protocol/index.ts";
import type { ServerKeys } from "../crypto/keys.ts";
import { issueAccessToken, type TokenSettings } from "../auth/tokens.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { SessionDirectory } from "../directory/session-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import { secretHash } from "../http/principal.ts";
import type { AccessEvents } from "../bus/access-events.ts";

/** What a successful sign-in or refresh returns. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  /** Access token lifetime in seconds. */
  expiresIn: number;
}

/** A session to start: the directory step that stores it, and its token pair once that committed. */
export interface PreparedSession {
  step: { op: "insertRefreshToken"; args: Parameters<SessionDirectory["insertRefreshToken"]> };
  tokens(): Promise<TokenPair>;
}

/** Session settings. */
export interface SessionSettings {
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /** How long after a rotation its token may be retried once (a lost answer); 0 turns the grace off. */
  reuseGraceSeconds: number;
}

/** Issues, rotates and revokes sign-in sessions. */
export class SessionService {
  constructor(
    private readonly deps: {
      directory: SessionDirectory & Pick<OrganisationDirectory, "getMembership">;
      keys: ServerKeys;
      tokens: TokenSettings;
      settings: SessionSettings;
      events: AccessEvents;
      now: () => number;
    },
  ) {}

  /**
   * Starts a new session (a new refresh-token family) for a person in an organisation.
   * `conversationScope`: the session reaches that conversation only (an invitation link's
   * session for an account with other credentials); refreshing keeps the scope.
   */
  async start(userId: string, orgId: string, options: { conversationScope?: string } = {}): Promise<TokenPair> {
    const session = this.prepare(userId, orgId, options);
    await this.deps.directory.insertRefreshToken(...session.step.args);
    return session.tokens();
  }

  /**
   * A session not started yet, for a caller that commits it together with other changes and its
   * audit entries (Directory.auditedSteps): `step` stores it; `tokens()` issues its pair, once
   * `step` has committed and never before.
   */
  prepare(userId: string, orgId: string, options: { conversationScope?: string } = {}): PreparedSession {
    const family = randomUUID();
    const refreshToken = `rt_${randomBytes(32).toString("base64url")}`;
    const now = this.deps.now();
    const conversationScope = options.conversationScope ?? null;
    const record = { tokenHash: secretHash(refreshToken), familyId: family, userId, orgId, expiresAt: now + this.deps.settings.refreshTtlSeconds * 1000, conversationScope };
    return { step: { op: "insertRefreshToken", args: [record, now] }, tokens: () => this.pair(userId, orgId, family, refreshToken, conversationScope) };
  }

  /** Rotates a refresh token; a reused one revokes its family and fails (the one retry within the grace aside). */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const next = `rt_${randomBytes(32).toString("base64url")}`;
    const now = this.deps.now();
    const outcome = await this.deps.directory.rotateRefreshToken(
      secretHash(refreshToken),
      secretHash(next),
      now + this.deps.settings.refreshTtlSeconds * 1000,
      now,
      this.deps.settings.reuseGraceSeconds * 1000,
    );
    if (outcome.status === "reused") {
      this.deps.events.emit({ kind: "session-revoked", family: outcome.familyId, userId: outcome.userId });
      throw new ParleyError(ErrorCode.InvalidRefreshToken, "refresh token already used: the session was revoked");
    }
    if (outcome.status !== "rotated") throw new ParleyError(ErrorCode.InvalidRefreshToken, "refresh token is invalid or expired");
    if (!(await this.deps.directory.getMembership(outcome.orgId, outcome.userId))) {
      throw new ParleyError(ErrorCode.InvalidRefreshToken, "no longer a member of this organisation");
    }
    return this.pair(outcome.userId, outcome.orgId, outcome.familyId, next, outcome.conversationScope);
  }

  /** Ends one session; its sockets close. */
  async signOut(family: string, userId: string): Promise<void> {
    await this.deps.directory.revokeFamily(family, userId, "signed out", this.deps.now());
    this.deps.events.emit({ kind: "session-revoked", family, userId });
  }

  /** Ends every session of a person; all their sockets close. */
  async signOutEverywhere(userId: string): Promise<void> {
    await this.deps.directory.revokeUserSessions(userId, "signed out everywhere", this.deps.now());
    this.deps.events.emit({ kind: "user-revoked", userId });
  }

  private async pair(userId: string, orgId: string, family: string, refreshToken: string, conversationScope: string | null): Promise<TokenPair> {
    const ttl = this.deps.settings.accessTtlSeconds;
    const accessToken = await issueAccessToken(this.deps.keys, this.deps.tokens, { user: userId, org: orgId, sessionFamily: family, ttlSeconds: ttl, conversationScope }, this.deps.now);
    return { accessToken, refreshToken, tokenType: "Bearer", expiresIn: ttl };
  }
}
