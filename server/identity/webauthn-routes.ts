// Security keys and passkeys over HTTP: register several (each with a name), list, rename and
// remove them, and sign in with one, either without a password (a passkey that verifies the
// person) or as the second factor after the password (login's `webauthn` field). Every
// registration, use and removal is recorded in the audit chain of each of the person's
// organisations; a removal is a security notice. A person's first key comes with ten recovery
// codes when they have none (shown once, in the registration's answer), so losing a key-only
// account's one key is not the end of it; removing the last second factor removes the codes.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { authenticationOptions, ChallengeTokens, registrationOptions, relyingPartyFor, verifyAssertion, verifyRegistration } from "../auth/webauthn.ts";
import { generateRecoveryCodes, hashRecoveryCode } from "../auth/totp.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { AuditedStep } from "../directory/directory.ts";
import type { User } from "../directory/directory-types.ts";
import type { Config } from "../platform/config.ts";
import { ParleyError } from "../platform/errors.ts";
import { route } from "../http/route.ts";
import { HttpError } from "../http/router.ts";
import type { HttpServices } from "./http-services.ts";
import { type AccountChangeServices, commitAccountChange, commitAccountChangeWith, inEveryOrg, type PendingFactor } from "./account-change.ts";
import { ItemsOf } from "../http/response-schemas.ts";
import { Email, Name, OrganisationView, RefreshCookie, TokenPair, UserView } from "../http/schemas.ts";

/** A WebAuthn response as the browser's JSON (checked field by field by the library). */
const CeremonyResponse = z.object({ id: z.string().max(1024), rawId: z.string().max(1024), type: z.literal("public-key"), response: z.record(z.string(), z.unknown()) }).passthrough();
export const WebauthnProof = z.object({ challengeToken: z.string().max(2048), response: CeremonyResponse });

// The options @simplewebauthn/server generates (WebAuthn Level 3's PublicKeyCredential*OptionsJSON),
// for navigator.credentials.create()/get() or @simplewebauthn/browser.
const CredentialDescriptor = z.object({ id: z.string(), type: z.literal("public-key"), transports: z.array(z.string()).optional() });
/** Extension inputs: open by the specification (a registry of extensions that keeps growing). */
const ExtensionInputs = z.record(z.string(), z.unknown());
const CreationOptions = z.object({
  rp: z.object({ name: z.string(), id: z.string().optional() }),
  user: z.object({ id: z.string(), name: z.string(), displayName: z.string() }),
  challenge: z.string(),
  pubKeyCredParams: z.array(z.object({ alg: z.number(), type: z.literal("public-key") })),
  timeout: z.number().optional(),
  excludeCredentials: z.array(CredentialDescriptor).optional(),
  authenticatorSelection: z
    .object({
      authenticatorAttachment: z.string().optional(),
      requireResidentKey: z.boolean().optional(),
      residentKey: z.string().optional(),
      userVerification: z.string().optional(),
    })
    .optional(),
  hints: z.array(z.string()).optional(),
  attestation: z.string().optional(),
  attestationFormats: z.array(z.string()).optional(),
  extensions: ExtensionInputs.optional(),
});
const RequestOptions = z.object({
  challenge: z.string(),
  timeout: z.number().optional(),
  rpId: z.string().optional(),
  allowCredentials: z.array(CredentialDescriptor).optional(),
  userVerification: z.string().optional(),
  hints: z.array(z.string()).optional(),
  extensions: ExtensionInputs.optional(),
});

/** What the security key ceremonies and routes use. */
export type WebauthnServices = AccountChangeServices &
  Pick<HttpServices, "keys" | "codeLimiter" | "now"> & {
    config: Pick<Config, "identity">;
    directory: Pick<AccountDirectory, "getUser" | "getUserByEmail" | "getWebauthnCredential" | "listWebauthnCredentials" | "countRecoveryCodes">;
  };

/** The ceremony helpers shared with the password sign-in (second factor). */
export function webauthnCeremonies(services: WebauthnServices) {
  const rp = relyingPartyFor(services.config.identity.publicUrl);
  const challenges = new ChallengeTokens(services.keys.auditKey, services.now);
  return {
    rp,
    challenges,
    /**
     * Verifies an assertion by one of `user`'s keys (throttled with the other codes). Its use (the
     * key's new counter and the "webauthn.used" entries) commits with the sign-in it opens.
     */
    async checkAssertion(user: User, proof: z.infer<typeof WebauthnProof>, requireUserVerification: boolean, ip: string): Promise<PendingFactor> {
      const gateKey = `2fa:${user.id}`;
      const gate = await services.codeLimiter.check(gateKey);
      if (!gate.allowed) throw new HttpError(ErrorCode.RateLimited, "too many failed attempts; wait", {}, gate.retryAfterMs / 1000);
      try {
        const { challenge } = challenges.open(proof.challengeToken, "sign-in");
        const key = await services.directory.getWebauthnCredential(proof.response.id);
        if (!key || key.userId !== user.id) throw new ParleyError(ErrorCode.InvalidTwoFactorCode, "this security key is not registered to this account");
        const counter = await verifyAssertion(rp, proof.response as never, challenge, key, requireUserVerification);
        const used = { action: "webauthn.used", actor: `user:${user.id}`, target: key.id, details: { passwordless: requireUserVerification }, personal: { ip } } as const;
        return {
          steps: [{ op: "useWebauthnCredential", args: [key.id, counter, services.now()] }],
          events: [await inEveryOrg(services, user.id, used)],
          gateKey,
          refusal: new ParleyError(ErrorCode.InvalidTwoFactorCode, "this security key's counter went backwards: it may have been cloned"),
        };
      } catch (error) {
        await services.codeLimiter.fail(gateKey);
        throw error;
      }
    },
  };
}

/** The security key routes. */
export function webauthnRoutes(
  services: WebauthnServices,
  deliver: (
    userId: string,
    orgId: string | undefined,
    refreshCookie: boolean | undefined,
    personal: { ip: string; userAgent: string },
    factor: PendingFactor,
  ) => Promise<{ status: number; body: unknown; headers: [string, string][] }>,
) {
  const { directory } = services;
  const ceremonies = webauthnCeremonies(services);
  const { rp, challenges } = ceremonies;
  const me = async (userId: string) => {
    const user = await directory.getUser(userId);
    if (!user) throw new ParleyError(ErrorCode.NotFound, "no such person");
    return user;
  };
  const view = (k: { id: string; name: string; createdAt: number; lastUsedAt: number | null }) => ({ id: k.id, name: k.name, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt });
  return [
    route({
      method: "post",
      path: "/v1/auth/webauthn/register/options",
      auth: "user",
      summary: "Start registering a security key or passkey: options for navigator.credentials.create() and a challengeToken.",
      tags: ["auth"],
      allowBeforeTwoFactor: true,
      body: z.object({}).optional(),
      response: { status: 200, description: "`options` (PublicKeyCredentialCreationOptionsJSON) and `challengeToken`.", schema: z.object({ options: CreationOptions, challengeToken: z.string() }) },
      async handler({ principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "a person registers keys");
        const user = await me(principal.userId);
        const options = await registrationOptions(rp, user, await directory.listWebauthnCredentials(user.id));
        return { status: 200, body: { options, challengeToken: challenges.issue(options.challenge, "register", user.id) } };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/webauthn/register",
      auth: "user",
      summary:
        "Finish registering a key: the authenticator's response, the challengeToken and a name for the key. A first key of a person with no recovery codes comes with ten (`recoveryCodes`, shown once).",
      tags: ["auth"],
      allowBeforeTwoFactor: true,
      body: WebauthnProof.extend({ name: Name }),
      response: {
        status: 201,
        description: "The key: `id`, `name`, `createdAt`; `recoveryCodes` when this first key came with them (shown this once, never again).",
        schema: z.object({ id: z.string(), name: z.string(), createdAt: z.number(), recoveryCodes: z.array(z.string()).optional() }),
      },
      errors: [ErrorCode.InvalidTwoFactorCode, ErrorCode.Conflict],
      async handler({ principal, body, ip }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "a person registers keys");
        const { challenge } = challenges.open(body.challengeToken, "register", principal.userId);
        const credential = await verifyRegistration(rp, body.response as never, challenge);
        const createdAt = services.now();
        if (await directory.getWebauthnCredential(credential.id)) throw new ParleyError(ErrorCode.Conflict, "this security key is already registered");
        const registered = { action: "webauthn.registered", actor: `user:${principal.userId}`, target: credential.id, details: { name: body.name }, personal: { ip } } as const;
        // A first key with no recovery codes to fall back on: codes come with it, in the same
        // transaction (issued only if still none exist by then, so a racing registration cannot
        // answer with codes that were replaced).
        const firstKey = (await directory.listWebauthnCredentials(principal.userId)).length === 0 && (await directory.countRecoveryCodes(principal.userId)) === 0;
        const recoveryCodes = firstKey ? generateRecoveryCodes(10) : [];
        const issued = { action: "2fa.recovery-codes-issued", actor: `user:${principal.userId}`, target: principal.userId, details: { reason: "first-security-key" } } as const;
        const { followed } = await commitAccountChangeWith(
          services,
          "registering the key",
          null,
          [{ op: "addWebauthnCredential", args: [{ ...credential, userId: principal.userId, name: body.name, createdAt }] }],
          [await inEveryOrg(services, principal.userId, registered)],
          firstKey ? { step: { op: "issueRecoveryCodesIfNone", args: [principal.userId, recoveryCodes.map(hashRecoveryCode)] }, events: [await inEveryOrg(services, principal.userId, issued)] } : null,
        );
        return { status: 201, body: { id: credential.id, name: body.name, createdAt, ...(followed ? { recoveryCodes } : {}) } };
      },
    }),
    route({
      method: "get",
      path: "/v1/auth/webauthn/credentials",
      auth: "user",
      summary: "Your security keys and passkeys (never their key material).",
      tags: ["auth"],
      response: { status: 200, description: "`items`: id, name, createdAt, lastUsedAt.", schema: ItemsOf(z.object({ id: z.string(), name: z.string(), createdAt: z.number(), lastUsedAt: z.number().nullable() })) },
      async handler({ principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "a person has keys");
        return { status: 200, body: { items: (await directory.listWebauthnCredentials(principal.userId)).map(view) } };
      },
    }),
    route({
      method: "patch",
      path: "/v1/auth/webauthn/credentials/:id",
      auth: "user",
      summary: "Rename one of your keys.",
      tags: ["auth"],
      body: z.object({ name: Name }),
      response: { status: 204, description: "Renamed." },
      async handler({ principal, params, body, ip }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.NotFound, "no such key");
        const renamed = { action: "webauthn.renamed", actor: `user:${principal.userId}`, target: params.id, details: { name: body.name }, personal: { ip } } as const;
        const done = await commitAccountChange(services, "renaming the key", null, [{ op: "renameWebauthnCredential", args: [principal.userId, params.id, body.name] }], [
          await inEveryOrg(services, principal.userId, renamed),
        ]);
        if (!done) throw new ParleyError(ErrorCode.NotFound, "no such key");
        return { status: 204 };
      },
    }),
    route({
      method: "delete",
      path: "/v1/auth/webauthn/credentials/:id",
      auth: "user",
      summary: "Remove one of your keys (a security notice to your organisations' owners and admins).",
      tags: ["auth"],
      response: { status: 204, description: "Removed." },
      async handler({ principal, params, ip }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.NotFound, "no such key");
        const key = await directory.getWebauthnCredential(params.id);
        if (!key || key.userId !== principal.userId) throw new ParleyError(ErrorCode.NotFound, "no such key");
        const removed = { action: "webauthn.removed", actor: `user:${principal.userId}`, target: key.id, details: { name: key.name }, personal: { ip } } as const;
        // The last second factor gone (no other key, no authenticator app): its recovery codes go
        // with it, or they would be a second factor nobody enrolled any more.
        const user = await me(principal.userId);
        const lastFactor =
          !user.totpEnabled && (await directory.listWebauthnCredentials(user.id)).every((k) => k.id === key.id) && (await directory.countRecoveryCodes(user.id)) > 0;
        const codesRemoved = { action: "2fa.recovery-codes-removed", actor: `user:${user.id}`, target: user.id, details: { reason: "last-second-factor-removed" } } as const;
        const steps: AuditedStep[] = [{ op: "removeWebauthnCredential", args: [principal.userId, params.id] }];
        // Not the last by the look above, but it may be by the time this commits (another key
        // removed at the same moment): then the codes still go, so none outlive every factor.
        if (!lastFactor) steps.push({ op: "removeRecoveryCodesWithoutSecondFactor", args: [user.id], optional: true });
        const { results } = await commitAccountChangeWith(
          services,
          "removing the key",
          null,
          steps,
          [await inEveryOrg(services, principal.userId, removed)],
          lastFactor ? { step: { op: "removeRecoveryCodesWithoutSecondFactor", args: [user.id] }, events: [await inEveryOrg(services, user.id, codesRemoved)] } : null,
        );
        if (!results) throw new ParleyError(ErrorCode.NotFound, "no such key");
        return { status: 204 };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/webauthn/login/options",
      auth: "public",
      summary: "Start signing in with a key: options for navigator.credentials.get() and a challengeToken (with `email`: that person's keys; without: any passkey).",
      tags: ["auth"],
      body: z.object({ email: Email.optional() }),
      response: { status: 200, description: "`options` (PublicKeyCredentialRequestOptionsJSON) and `challengeToken`.", schema: z.object({ options: RequestOptions, challengeToken: z.string() }) },
      async handler({ body }) {
        // An unknown email gets options too (with no keys listed), so accounts cannot be probed.
        const user = body.email ? await directory.getUserByEmail(body.email) : null;
        const keys = body.email ? (user ? await directory.listWebauthnCredentials(user.id) : []) : null;
        const options = await authenticationOptions(rp, keys);
        return { status: 200, body: { options, challengeToken: challenges.issue(options.challenge, "sign-in", null) } };
      },
    }),
    route({
      method: "post",
      path: "/v1/auth/webauthn/login",
      auth: "public",
      summary: "Sign in without a password: a passkey's assertion (it must verify the person: PIN or biometrics).",
      tags: ["auth"],
      sensitive: true,
      body: WebauthnProof.extend({ organisation: z.string().max(64).optional(), refreshCookie: RefreshCookie }),
      response: { status: 200, description: "Signed in, as /v1/auth/login answers.", schema: TokenPair.extend({ user: UserView, organisation: OrganisationView }) },
      errors: [ErrorCode.InvalidTwoFactorCode, ErrorCode.InvalidCredentials, ErrorCode.RateLimited],
      async handler({ body, ip, headers }) {
        const key = await directory.getWebauthnCredential(body.response.id);
        const user = key ? await directory.getUser(key.userId) : null;
        if (!user) throw new ParleyError(ErrorCode.InvalidCredentials, "this key is not registered here");
        const factor = await ceremonies.checkAssertion(user, body, true, ip);
        return deliver(user.id, body.organisation, body.refreshCookie, { ip, userAgent: headers.userAgent }, factor);
      },
    }),
  ];
}
