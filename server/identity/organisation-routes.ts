// An organisation's own settings and API keys (members: membership-routes.ts). Only people
// acting for the organisation see it (others get 404); changing anything needs the admin or owner role.

import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { AccessDirectory } from "../directory/access-directory.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { AuditedChangesOf } from "../directory/directory.ts";
import { auditActor } from "../directory/org-recorder.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import { API_KEY_SCOPES } from "./access-control.ts";
import { ipAllowed, isValidAllowlistEntry } from "../http/ip-allowlist.ts";
import { API_KEY_PREFIX, ownOrganisation, requireAdmin, secretHash } from "../http/principal.ts";
import { route } from "../http/route.ts";
import type { HttpServices } from "./http-services.ts";
import { newId } from "./auth-routes.ts";
import { Name } from "../http/schemas.ts";
import { ItemsOf, OrganisationRecordView } from "../http/response-schemas.ts";

/** What the organisation routes use: the organisation's settings and its API keys, created and revoked audited. */
export type OrganisationRouteServices = Pick<HttpServices, "orgAudit" | "now"> & {
  directory: Pick<OrganisationDirectory, "getOrganisation" | "updateOrganisation"> &
    Pick<AccountDirectory, "getUser" | "listWebauthnCredentials"> &
    Pick<AccessDirectory, "listApiKeys"> &
    AuditedChangesOf<"createApiKey" | "revokeApiKey">;
};

/** The organisation routes. */
export function organisationRoutes(services: OrganisationRouteServices) {
  const { directory } = services;
  return [
    route({
      method: "get",
      path: "/v1/organisations/:org",
      auth: "principal",
      summary: "An organisation's settings.",
      tags: ["organisations"],
      response: { status: 200, description: "The organisation.", schema: OrganisationRecordView },
      async handler({ params, principal }) {
        ownOrganisation(principal, params.org);
        const org = await directory.getOrganisation(params.org);
        if (!org) throw new ParleyError(ErrorCode.NotFound, "no such organisation");
        return { status: 200, body: org };
      },
    }),
    route({
      method: "patch",
      path: "/v1/organisations/:org",
      auth: "user",
      summary: "Change the name, require two-factor of members, or set the IP allowlist (admins).",
      tags: ["organisations"],
      body: z.object({
        name: Name.optional(),
        require2fa: z.boolean().optional(),
        requireSecurityKey: z.boolean().optional().describe("members must have a security key (WebAuthn); until they register one they can do nothing else"),
        ipAllowlist: z.array(z.string().refine(isValidAllowlistEntry, "must be an IP address or CIDR range")).max(100).optional(),
      }),
      response: { status: 200, description: "The updated organisation.", schema: OrganisationRecordView },
      async handler({ params, principal, body, ip }) {
        requireAdmin(principal, params.org);
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        if (body.require2fa) {
          const me = await directory.getUser(principal.userId);
          if (!me?.totpEnabled) throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "turn on two-factor for yourself first");
        }
        if (body.requireSecurityKey && (await directory.listWebauthnCredentials(principal.userId)).length === 0) {
          throw new ParleyError(ErrorCode.TwoFactorEnrolmentRequired, "register a security key for yourself first");
        }
        if (body.ipAllowlist && !ipAllowed(ip, body.ipAllowlist)) {
          throw new ParleyError(ErrorCode.InvalidRequest, `ipAllowlist would lock out your own address ${ip}`);
        }
        await directory.updateOrganisation(params.org, body);
        return { status: 200, body: await directory.getOrganisation(params.org) };
      },
    }),
    route({
      method: "post",
      path: "/v1/organisations/:org/api-keys",
      auth: "user",
      summary: "Create an API key for a partner system. The key is shown once; only its hash is stored.",
      tags: ["api-keys"],
      sensitive: true,
      body: z.object({ name: Name, scopes: z.array(z.enum(API_KEY_SCOPES)).min(1) }),
      response: { status: 201, description: "The key (`key`) — store it now, it cannot be shown again.", schema: z.object({ id: z.string(), name: z.string(), scopes: z.array(z.enum(API_KEY_SCOPES)), key: z.string() }) },
      async handler({ params, principal, body }) {
        requireAdmin(principal, params.org);
        const id = newId("key");
        const secret = randomBytes(32).toString("base64url");
        // Stored and audited in one transaction, before the secret is shown: a key whose creation
        // is not audited never exists, let alone is handed out.
        const key = { id, orgId: params.org, name: body.name, scopes: body.scopes, secretHash: secretHash(secret), createdBy: principal.kind === "user" ? principal.userId : "" };
        await services.orgAudit.recordWith(directory, "createApiKey", [key, services.now()], params.org, {
          action: "api-key.created",
          actor: auditActor(principal),
          target: id,
          details: { scopes: body.scopes.join(" ") },
        });
        return { status: 201, body: { id, name: body.name, scopes: body.scopes, key: `${API_KEY_PREFIX}${id}.${secret}` } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/api-keys",
      auth: "user",
      summary: "The organisation's API keys (never their secrets), with last use.",
      tags: ["api-keys"],
      response: { status: 200, description: "Keys.", schema: ItemsOf(
          z.object({
            id: z.string(),
            orgId: z.string(),
            name: z.string(),
            scopes: z.array(z.enum(API_KEY_SCOPES)),
            createdAt: z.number(),
            createdBy: z.string(),
            lastUsedAt: z.number().nullable(),
            revokedAt: z.number().nullable(),
          }),
        ),
      },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const keys = await directory.listApiKeys(params.org);
        return { status: 200, body: { items: keys.map(({ secretHash: _hidden, ...key }) => key) } };
      },
    }),
    route({
      method: "delete",
      path: "/v1/organisations/:org/api-keys/:key",
      auth: "user",
      summary: "Revoke an API key; it stops working on its next request.",
      tags: ["api-keys"],
      response: { status: 204, description: "Revoked." },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const event = { action: "api-key.revoked", actor: auditActor(principal), target: params.key } as const;
        if (!(await services.orgAudit.recordWith(directory, "revokeApiKey", [params.org, params.key, services.now()], params.org, event))) {
          throw new ParleyError(ErrorCode.NotFound, "no such key");
        }
        return { status: 204 };
      },
    }),
  ];
}
