// Sign-in (password, then TOTP or a recovery code when enrolled), refresh, sign-out, and
// two-factor enrolment (sign-up is in signup-routes.ts). Failed attempts are throttled per account
// and per address; an unknown email costs the same time as a wrong password, so accounts cannot be probed.

import { randomUUID } from "node:crypto";
import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { OrgEventInput } from "../directory/org-recorder.ts";
import { checkPassword } from "../auth/passwords.ts";
import { openSecret, sealSecret } from "../crypto/secret-box.ts";
import { createTotpEnrolment, generateRecoveryCodes, hashRecoveryCode, verifyTotp } from "../auth/totp.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { User } from "../directory/directory-types.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { Config } from "../platform/config.ts";
import { addressKey } from "../limits/address-key.ts";
import { ParleyError } from "../platform/errors.ts";
import { type AccountChangeServices, commitAccountChange, inEveryOrg, type PendingFactor } from "./account-change.ts";
import { WebauthnProof, type WebauthnServices, webauthnCeremonies, webauthnRoutes } from "./webauthn-routes.ts";
import { repeatedFailuresNotice } from "../notices/notice-policy.ts";
import { route } from "../http/route.ts";
import { HttpError } from "../http/router.ts";
import { clearedSessionCookies, refreshTokenFromCookie, sessionCookies } from "../http/session-cookies.ts";
import type { HttpServices } from "./http-services.ts";
import type { TokenPair as Tokens } from "./session-service.ts";
import { Email, MemberRole, OrganisationView, Password, RefreshCookie, TokenPair, UserView } from "../http/schemas.ts";

/** Ids are random and prefixed by kind, so a leaked id says what it is and nothing else. */
export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "")}`;
}

const totpAssociatedData = (userId: string) => `totp:${userId}`;

/** What checking a second factor uses: the code throttle, the TOTP secrets' key, the replay guard. */
type SecondFactorServices = AccountChangeServices &
  Pick<HttpServices, "codeLimiter" | "secretsKey" | "now"> & {
    directory: Pick<AccountDirectory, "consumeTotpStep">;
  };

/** Where tokens go: the refresh cookie's lifetime and the public address it is scoped to. */
export interface TokenDelivery {
  config: Pick<Config, "identity">;
}

/** What the sign-in, refresh, sign-out and two-factor routes use (the security key routes' too). */
export type AuthRouteServices = WebauthnServices &
  SecondFactorServices &
  TokenDelivery &
  Pick<HttpServices, "hasher" | "sessions" | "loginLimiter" | "notices" | "orgAudit" | "logger" | "now"> & {
    directory: Pick<AccountDirectory, "getUser" | "getUserByEmail" | "listWebauthnCredentials" | "countRecoveryCodes" | "setPasswordHash" | "setTotp"> &
      Pick<OrganisationDirectory, "getOrganisation" | "listMemberships">;
  };

/** Refuses an unacceptable password with its problems and score. */
export function assertAcceptable(services: Pick<HttpServices, "passwordPolicy">, password: string, context: string[]): number {
  const verdict = checkPassword(password, context, services.passwordPolicy);
  if (!verdict.acceptable) {
    throw new HttpError(ErrorCode.WeakPassword, verdict.problems[0] ?? "password is too weak", {
      score: verdict.score,
      problems: verdict.problems,
      suggestions: verdict.suggestions,
    });
  }
  return verdict.score;
}

/** A second factor an account can sign in with, as the TwoFactorRequired answer names them. */
export type SecondFactor = "security-key" | "authenticator-app" | "recovery-code";

async function availableSecondFactors(services: { directory: Pick<AccountDirectory, "countRecoveryCodes"> }, user: User, hasKeys: boolean): Promise<SecondFactor[]> {
  const factors: SecondFactor[] = [];
  if (hasKeys) factors.push("security-key");
  if (user.totpEnabled) factors.push("authenticator-app");
  // Recovery codes work whichever factor is enrolled, but only while some are left.
  if ((await services.directory.countRecoveryCodes(user.id)) > 0) factors.push("recovery-code");
  return factors;
}

function secondFactorRequest(factors: readonly SecondFactor[]): string {
  if (!factors.includes("security-key")) return "send the code from your authenticator app";
  return factors.includes("authenticator-app") ? "use your security key (or a code from your authenticator app)" : "use your security key";
}

/**
 * Checks a TOTP code (each step usable once; spent here) or a recovery code (each usable once;
 * spent by the change it unlocks, with its audit entry, see account-change.ts).
 */
async function checkSecondFactor(services: SecondFactorServices, user: User, code: { totp?: string; recoveryCode?: string }): Promise<PendingFactor> {
  const key = `2fa:${user.id}`;
  const now = services.now();
  const gate = await services.codeLimiter.check(key);
  if (!gate.allowed) throw new HttpError(ErrorCode.RateLimited, "too many wrong codes; wait", {}, gate.retryAfterMs / 1000);
  const refusal = new ParleyError(ErrorCode.InvalidTwoFactorCode, "the code is wrong, expired or already used");
  if (code.totp && user.totpSealed) {
    const secret = new TextDecoder().decode(openSecret(services.secretsKey, user.totpSealed, totpAssociatedData(user.id)));
    const result = verifyTotp(secret, code.totp, { now, lastUsedStep: user.totpLastStep });
    // The conditional update makes "no code accepted twice" hold even for simultaneous requests.
    if (result.ok && (await services.directory.consumeTotpStep(user.id, result.step))) return { steps: [], events: [], gateKey: key, refusal };
  } else if (code.recoveryCode) {
    return {
      steps: [{ op: "consumeRecoveryCode", args: [user.id, hashRecoveryCode(code.recoveryCode), now] }],
      events: [await inEveryOrg(services, user.id, { action: "2fa.recovery-code-used", actor: `user:${user.id}`, target: user.id })],
      gateKey: key,
      refusal,
    };
  }
  await services.codeLimiter.fail(key);
  throw refusal;
}

/**
 * Starts a session with its "login.succeeded" entry and the second factor it spends, in one
 * transaction: without its entry there is no session (and the factor stays unspent).
 */
async function startAuditedSession(services: AccountChangeServices & Pick<HttpServices, "sessions">, user: User, orgId: string, factor: PendingFactor | null, details: OrgEventInput["details"], personal: { ip: string; userAgent: string }): Promise<Tokens> {
  const session = services.sessions.prepare(user.id, orgId);
  const event: OrgEventInput = { action: "login.succeeded", actor: `user:${user.id}`, target: user.id, details, personal };
  await commitAccountChange(services, "the sign-in", factor, [session.step], [{ orgs: orgId, event }]);
  return session.tokens();
}

/**
 * Tokens as the caller asked for them: both in the body, or (the web app, `refreshCookie: true`)
 * the refresh token only in its HttpOnly cookie, out of reach of the page's script.
 */
export function deliverTokens(services: TokenDelivery, tokens: Tokens, refreshCookie: boolean | undefined) {
  if (!refreshCookie) return { tokens: tokens as Omit<Tokens, "refreshToken"> & { refreshToken?: string }, headers: [] as [string, string][] };
  const { refreshToken, ...rest } = tokens;
  const { refreshTokenTtlSeconds, publicUrl } = services.config.identity;
  return { tokens: rest as Omit<Tokens, "refreshToken"> & { refreshToken?: string }, headers: sessionCookies(refreshToken, refreshTokenTtlSeconds, publicUrl) };
}

/** The authentication routes. */
export function authRoutes(services: AuthRouteServices) {
  const { directory, hasher, sessions } = services;
  const ceremonies = webauthnCeremonies(services);
  /** Signs a person in (passwordless with a passkey): the same answer and audit event as the password sign-in. */
  const deliverSignIn = async (userId: string, orgId: string | undefined, refreshCookie: boolean | undefined, personal: { ip: string; userAgent: string }, factor: PendingFactor) => {
    const user = await directory.getUser(userId);
    const memberships = await directory.listMemberships(userId);
    const membership = orgId ? memberships.find((m) => m.orgId === orgId) : memberships[0];
    if (!user || !membership) throw new ParleyError(ErrorCode.InvalidCredentials, "not a member of that organisation");
    const session = await startAuditedSession(services, user, membership.orgId, factor, { passkey: true }, personal);
    const { tokens, headers } = deliverTokens(services, session, refreshCookie);
    return {
      status: 200,
      body: { ...tokens, user: { id: user.id, email: user.email, name: user.name }, organisation: { id: membership.orgId, name: membership.orgName } },
      headers,
    };
  };
  return [
    ...webauthnRoutes(services, deliverSignIn),
    route({
      method: "post",
      path: "/v1/auth/login",
      auth: "public",
      summary: "Sign in with email and password (plus `totp` or `recoveryCode` when two-factor is on).",
      tags: ["auth"],
      sensitive: true,
      body: z.object({
        email: Email,
        password: Password,
        organisation: z.string().optional().describe("organisation id to act for; default: the first membership"),
        totp: z.string().regex(/^\d{6}$/).optional(),
        recoveryCode: z.string().max(64).optional(),
        webauthn: WebauthnProof.optional().describe("a security key's assertion as the second factor (options from /v1/auth/webauthn/login/options)"),
        refreshCookie: RefreshCookie,
      }),
      response: { status: 200, description: "Signed in.", schema: TokenPair.extend({ user: UserView, organisation: OrganisationView }) },
      errors: [ErrorCode.InvalidCredentials, ErrorCode.TwoFactorRequired, ErrorCode.InvalidTwoFactorCode, ErrorCode.RateLimited],
      async handler({ body, ip, headers }) {
        const personal = { ip, userAgent: headers.userAgent };
        // Per address as the request limits count it: an IPv6 /64 is one subscriber, not 2^64 fresh tries.
        const byAddress = `login-ip:${addressKey(ip)}`;
        for (const key of [`login:${body.email}`, byAddress]) {
          const gate = await services.loginLimiter.check(key);
          if (!gate.allowed) throw new HttpError(ErrorCode.RateLimited, "too many failed sign-ins; wait", {}, gate.retryAfterMs / 1000);
        }
        const user = await directory.getUserByEmail(body.email);
        const verdict = user?.passwordHash ? await hasher.verify(user.passwordHash, body.password) : await hasher.dummyVerify();
        if (!user || !verdict.ok) {
          const [account] = await Promise.all([services.loginLimiter.fail(`login:${body.email}`), services.loginLimiter.fail(byAddress)]);
          // The failure that locks an existing account is a security notice for its organisations.
          if (user && !account.allowed && services.notices) {
            const window = Math.floor(services.now() / 900_000);
            for (const m of await directory.listMemberships(user.id)) {
              void services.notices.raise(m.orgId, repeatedFailuresNotice(m.orgId, user.id, { ip, userAgent: headers.userAgent }, window));
            }
          }
          // A failed sign-in must not wait on (or fail because of) the audit write: recorded, or logged.
          if (user) {
            const event = { action: "login.failed", actor: `user:${user.id}`, target: user.id, details: { reason: "password" }, personal } as const;
            for (const m of await directory.listMemberships(user.id)) void services.orgAudit.recordOrLog(m.orgId, event);
          } else {
            services.logger.warn({ security: "login-failed", emailHash: services.orgAudit.pseudonym(body.email) }, "sign-in for an unknown email");
          }
          throw new ParleyError(ErrorCode.InvalidCredentials, "email or password is wrong");
        }
        const memberships = await directory.listMemberships(user.id);
        const membership = body.organisation ? memberships.find((m) => m.orgId === body.organisation) : memberships[0];
        if (!membership) throw new ParleyError(ErrorCode.InvalidCredentials, "not a member of that organisation");
        // A second factor: TOTP, a security key, or a recovery code (which works whichever is enrolled).
        const hasKeys = (await directory.listWebauthnCredentials(user.id)).length > 0;
        let factor: PendingFactor | null = null;
        let refuseFactor = async (error: unknown): Promise<never> => Promise.reject(error);
        if (user.totpEnabled || hasKeys) {
          if (!body.totp && !body.recoveryCode && !body.webauthn) {
            // The password was right, so the caller may learn which factors this account can use
            // (the sign-in page then asks for a code only when one can work).
            const secondFactors = await availableSecondFactors(services, user, hasKeys);
            throw new HttpError(ErrorCode.TwoFactorRequired, secondFactorRequest(secondFactors), { secondFactors });
          }
          refuseFactor = async (error: unknown): Promise<never> => {
            // The password was right, so waiting tells nobody whether the account exists: the entry
            // is written (or, failing that, logged in full) before the refusal is answered.
            const event = { action: "login.failed", actor: `user:${user.id}`, target: user.id, details: { reason: "second-factor" }, personal } as const;
            await services.orgAudit.recordOrLog(membership.orgId, event);
            throw error;
          };
          const second = body.webauthn ? ceremonies.checkAssertion(user, body.webauthn, false, ip) : checkSecondFactor(services, user, body);
          factor = await second.catch(refuseFactor);
        }
        const pending = factor;
        const session = await startAuditedSession(services, user, membership.orgId, pending, { secondFactor: pending !== null }, personal).catch((error: unknown) =>
          // A recovery code or key spent by a simultaneous sign-in: a wrong factor after all.
          pending && error === pending.refusal ? refuseFactor(error) : Promise.reject(error),
        );
        await services.loginLimiter.succeed(`login:${body.email}`);
        if (verdict.needsRehash) await directory.setPasswordHash(user.id, await hasher.hash(body.password));
        const { tokens, headers: cookies } = deliverTokens(services, session, body.refreshCookie);
        return {
          status: 200,
          body: { ...tokens, user: { id: user.id, email: user.email, name: user.name }, organisation: { id: membership.orgId, name: membership.orgName } },
          headers: cookies,
        };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/refresh",
      auth: "public",
      summary:
        "Exchange a refresh token for a new pair. Each refresh token works once; reuse revokes the session (except one retry of the token just rotated, within the reuse grace and before its successor was used: a lost answer). Without `refreshToken` in the body, the refresh cookie is used (with the `X-Parley-CSRF` header matching the `parley_csrf` cookie) and renewed.",
      tags: ["auth"],
      sensitive: true,
      body: z.object({ refreshToken: z.string().min(10).max(200).optional() }),
      response: { status: 200, description: "A new token pair (cookie mode: the refresh token only in its cookie).", schema: TokenPair },
      errors: [ErrorCode.InvalidRefreshToken, ErrorCode.Forbidden],
      async handler({ body, headers }) {
        if (body.refreshToken) return { status: 200, body: await sessions.refresh(body.refreshToken) };
        const presented = refreshTokenFromCookie(headers, services.config.identity.publicUrl);
        const { tokens, headers: cookies } = deliverTokens(services, await sessions.refresh(presented), true);
        return { status: 200, body: tokens, headers: cookies };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/logout",
      auth: "user",
      openToConversationSessions: true,
      allowBeforeTwoFactor: true,
      summary: "Sign out this session (or every session); its sockets close within a second.",
      tags: ["auth"],
      body: z.object({ everywhere: z.boolean().default(false) }),
      response: { status: 204, description: "Signed out." },
      async handler({ body, principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        if (body.everywhere || !principal.sessionFamily) await sessions.signOutEverywhere(principal.userId);
        else await sessions.signOut(principal.sessionFamily, principal.userId);
        // A browser signed in through the web app also drops its session cookies.
        return { status: 204, headers: clearedSessionCookies(services.config.identity.publicUrl) };
      },
    }),
    route({
      method: "get",
      path: "/v1/me",
      auth: "user",
      openToConversationSessions: true,
      allowBeforeTwoFactor: true,
      summary: "The signed-in person, the organisation they act for, and their memberships.",
      tags: ["auth"],
      response: { status: 200, description: "Who you are.", schema: z.union([
          z.object({
            user: UserView.extend({ twoFactor: z.boolean() }),
            organisation: z.object({ id: z.string(), role: MemberRole }),
            memberships: z.array(z.object({ orgId: z.string(), orgName: z.string(), userId: z.string(), role: MemberRole })),
          }),
          z.object({ user: UserView, conversationScope: z.string().describe("a session from an invitation link: the one conversation it reaches") }),
        ]),
      },
      async handler({ principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        const user = await directory.getUser(principal.userId);
        if (!user) throw new ParleyError(ErrorCode.NotFound, "no such user");
        if (principal.conversationScope) {
          // A session from an invitation link shows nothing of the account beyond who it is.
          return { status: 200, body: { user: { id: user.id, email: user.email, name: user.name }, conversationScope: principal.conversationScope } };
        }
        return {
          status: 200,
          body: {
            user: { id: user.id, email: user.email, name: user.name, twoFactor: user.totpEnabled },
            organisation: { id: principal.orgId, role: principal.role },
            memberships: await directory.listMemberships(user.id),
          },
        };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/2fa/enrol",
      auth: "user",
      allowBeforeTwoFactor: true,
      summary: "Start two-factor enrolment: returns a TOTP secret and otpauth:// URI for an authenticator app.",
      tags: ["two-factor"],
      sensitive: true,
      response: { status: 200, description: "Scan `uri` (or type `secret`), then confirm with /v1/auth/2fa/verify.", schema: z.object({ secret: z.string(), uri: z.string() }) },
      errors: [ErrorCode.Conflict],
      async handler({ principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        const user = await directory.getUser(principal.userId);
        if (!user) throw new ParleyError(ErrorCode.NotFound, "no such user");
        if (user.totpEnabled) throw new ParleyError(ErrorCode.Conflict, "two-factor is already on; disable it first");
        const enrolment = createTotpEnrolment(user.email, "Parley");
        const sealed = sealSecret(services.secretsKey, new TextEncoder().encode(enrolment.secret), totpAssociatedData(user.id));
        await directory.setTotp(user.id, sealed, false);
        return { status: 200, body: enrolment };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/2fa/verify",
      auth: "user",
      allowBeforeTwoFactor: true,
      summary: "Confirm enrolment with a current code; turns two-factor on and returns ten one-time recovery codes (shown once).",
      tags: ["two-factor"],
      sensitive: true,
      body: z.object({ code: z.string().regex(/^\d{6}$/) }),
      response: { status: 200, description: "Two-factor is on.", schema: z.object({ recoveryCodes: z.array(z.string()) }) },
      errors: [ErrorCode.InvalidTwoFactorCode, ErrorCode.Conflict],
      async handler({ body, principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        const user = await directory.getUser(principal.userId);
        if (!user?.totpSealed) throw new ParleyError(ErrorCode.Conflict, "start enrolment first");
        if (user.totpEnabled) throw new ParleyError(ErrorCode.Conflict, "two-factor is already on");
        const factor = await checkSecondFactor(services, user, { totp: body.code });
        const recoveryCodes = generateRecoveryCodes(10);
        // On with its recovery codes and its entries, or not at all.
        await commitAccountChange(
          services,
          "turning two-factor on",
          factor,
          [
            { op: "enableTotp", args: [user.id] },
            { op: "replaceRecoveryCodes", args: [user.id, recoveryCodes.map(hashRecoveryCode)] },
          ],
          [await inEveryOrg(services, user.id, { action: "2fa.enabled", actor: `user:${user.id}`, target: user.id })],
        );
        return { status: 200, body: { recoveryCodes } };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/2fa/disable",
      auth: "user",
      summary: "Turn two-factor off (needs a current code or a recovery code).",
      tags: ["two-factor"],
      body: z.object({ totp: z.string().regex(/^\d{6}$/).optional(), recoveryCode: z.string().max(64).optional() }),
      response: { status: 204, description: "Two-factor is off." },
      errors: [ErrorCode.InvalidTwoFactorCode, ErrorCode.TwoFactorEnrolmentRequired],
      async handler({ body, principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        const user = await directory.getUser(principal.userId);
        if (!user?.totpEnabled) return { status: 204 };
        const org = await directory.getOrganisation(principal.orgId);
        if (org?.require2fa) throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "your organisation requires two-factor");
        const factor = await checkSecondFactor(services, user, body);
        // Off, the code that allowed it spent, each entry written: together or not at all. The
        // recovery codes stay while a security key remains (they are its fallback too) and go
        // when the app was the last second factor.
        await commitAccountChange(
          services,
          "turning two-factor off",
          factor,
          [
            { op: "setTotp", args: [user.id, null, false] },
            { op: "removeRecoveryCodesWithoutSecondFactor", args: [user.id], optional: true },
          ],
          [await inEveryOrg(services, user.id, { action: "2fa.disabled", actor: `user:${user.id}`, target: user.id })],
        );
        return { status: 204 };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/recovery-codes",
      auth: "user",
      summary:
        "Replace your recovery codes with ten new ones (shown once; the old ones stop working). Needs a current second factor: `totp`, `recoveryCode` or a security key's `webauthn` assertion.",
      tags: ["two-factor"],
      sensitive: true,
      body: z.object({
        totp: z.string().regex(/^\d{6}$/).optional(),
        recoveryCode: z.string().max(64).optional(),
        webauthn: WebauthnProof.optional().describe("a security key's assertion (options from /v1/auth/webauthn/login/options)"),
      }),
      response: { status: 200, description: "The new codes.", schema: z.object({ recoveryCodes: z.array(z.string()) }) },
      errors: [ErrorCode.InvalidTwoFactorCode, ErrorCode.Conflict, ErrorCode.RateLimited],
      async handler({ body, principal, ip }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        const user = await directory.getUser(principal.userId);
        if (!user) throw new ParleyError(ErrorCode.NotFound, "no such user");
        // A session alone is not enough: whoever holds a stolen token would otherwise mint a
        // second factor of their own. The person proves one they already have.
        const hasKeys = (await directory.listWebauthnCredentials(user.id)).length > 0;
        if (!user.totpEnabled && !hasKeys) throw new ParleyError(ErrorCode.Conflict, "recovery codes back up a second factor: turn on an authenticator app or register a security key first");
        const factor = body.webauthn ? await ceremonies.checkAssertion(user, body.webauthn, false, ip) : await checkSecondFactor(services, user, body);
        const recoveryCodes = generateRecoveryCodes(10);
        const issued = { action: "2fa.recovery-codes-issued", actor: `user:${user.id}`, target: user.id, details: { reason: "regenerated" }, personal: { ip } } as const;
        await commitAccountChange(services, "replacing the recovery codes", factor, [{ op: "replaceRecoveryCodes", args: [user.id, recoveryCodes.map(hashRecoveryCode)] }], [
          await inEveryOrg(services, user.id, issued),
        ]);
        return { status: 200, body: { recoveryCodes } };
      },
    }),
  ];
}
