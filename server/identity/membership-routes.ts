// Who belongs to an organisation, and how one joins: an account belongs to its person, so an
// organisation never adds one silently. Admins invite an address; the person accepts while
// signed in. The answer to an invitation is the same whether or not the address has an account
// (both get an e-mail), so the API tells nobody which addresses have one. Only owners grant,
// change or remove the owner role; an organisation always keeps an owner (the directory's rule).

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { auditActor } from "../directory/org-recorder.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { AuditedChangesOf } from "../directory/directory.ts";
import type { MemberRole } from "../directory/directory-types.ts";
import type { InvitationDirectory } from "../directory/invitation-directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { Config } from "../platform/config.ts";
import { ParleyError } from "../platform/errors.ts";
import type { Principal, UserPrincipal } from "../http/principal.ts";
import { route } from "../http/route.ts";
import type { HttpServices } from "./http-services.ts";
import { newId } from "./auth-routes.ts";
import { ownOrganisation, requireAdmin } from "../http/principal.ts";
import { Email, Id, MemberRole as MemberRoleSchema } from "../http/schemas.ts";
import { ItemsOf, MemberView } from "../http/response-schemas.ts";

/** How long a membership invitation may be accepted. */
export const MEMBER_INVITATION_TTL_MS = 14 * 24 * 3600 * 1000;

const InvitationView = z.object({ id: z.string(), email: z.string(), role: MemberRoleSchema, expiresAt: z.number() });

/** Owners alone hand out, change or take away the owner role (an admin cannot make or unmake one). */
function requireOwnerFor(principal: Principal, current: MemberRole | null, next: MemberRole | null): void {
  if (current !== "owner" && next !== "owner") return;
  if (principal.kind !== "user" || principal.role !== "owner") {
    throw new ParleyError(ErrorCode.InsufficientRole, "only owners grant, change or remove the owner role");
  }
}

function signedInPerson(principal: Principal): UserPrincipal {
  if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
  return principal;
}

/** What the membership routes use: members and their invitations, each change audited, and the invitation mail. */
export type MembershipRouteServices = Pick<HttpServices, "events" | "orgAudit" | "mailer" | "now"> & {
  config: Pick<Config, "identity">;
  directory: Pick<OrganisationDirectory, "getMembership" | "getOrganisation" | "listMembers"> &
    Pick<AccountDirectory, "getUser" | "getUserByEmail"> &
    Pick<InvitationDirectory, "listMemberInvitations" | "listMemberInvitationsForEmail" | "declineMemberInvitation"> &
    AuditedChangesOf<"putMember" | "removeMember" | "createMemberInvitation" | "revokeMemberInvitation" | "acceptMemberInvitation">;
};

/** The membership routes: the organisation's side and the invited person's side. */
export function membershipRoutes(services: MembershipRouteServices) {
  const { directory, events } = services;

  const changeRole = async (principal: Principal, orgId: string, userId: string, role: MemberRole) => {
    const current = await directory.getMembership(orgId, userId);
    if (!current) throw new ParleyError(ErrorCode.NotFound, "no such member");
    requireOwnerFor(principal, current, role);
    // The change and its audit entry in one transaction: neither without the other.
    const event = { action: "member.role-changed", actor: auditActor(principal), target: userId, details: { role } } as const;
    await services.orgAudit.recordWith(directory, "putMember", [orgId, userId, role, services.now()], orgId, event);
    events.emit({ kind: "membership-changed", orgId, userId });
  };

  const mailInvitation = async (to: string, orgName: string, inviter: string, hasAccount: boolean) => {
    const base = services.config.identity.publicUrl;
    const how = hasAccount
      ? `Sign in to Parley with this address and accept it (GET ${base}/v1/me/member-invitations lists it).`
      : `Create a Parley account with this address (${base}/v1/signup), then accept it (GET ${base}/v1/me/member-invitations lists it).`;
    await services.mailer.send({
      to,
      subject: `${inviter} invited you to join "${orgName}" on Parley`,
      text: [
        `${inviter} invited you to become a member of the organisation "${orgName}".`,
        "",
        how,
        "The invitation is valid for 14 days. Nothing changes unless you accept it; if you did not expect this, ignore this message.",
      ].join("\n"),
    });
  };

  return [
    route({
      method: "get",
      path: "/v1/organisations/:org/members",
      auth: "user",
      summary: "The organisation's members and their roles.",
      tags: ["organisations"],
      response: { status: 200, description: "Members.", schema: ItemsOf(MemberView) },
      async handler({ params, principal }) {
        ownOrganisation(principal, params.org);
        return { status: 200, body: { items: await directory.listMembers(params.org) } };
      },
    }),
    route({
      method: "post",
      path: "/v1/organisations/:org/members",
      auth: "user",
      summary:
        "Invite an address to become a member (admins; only owners invite owners). The person accepts while signed in; the answer is the same whether or not the address has an account. For someone already a member, this changes their role.",
      tags: ["organisations"],
      body: z.object({ email: Email, role: MemberRoleSchema.default("member") }),
      response: { status: 202, description: "Invited: the person gets an e-mail and accepts at POST /v1/me/member-invitations/:id/accept.", schema: z.object({ invitation: InvitationView }) },
      errors: [ErrorCode.InsufficientRole, ErrorCode.NotFound],
      async handler({ params, principal, body }) {
        requireAdmin(principal, params.org);
        requireOwnerFor(principal, null, body.role);
        const user = await directory.getUserByEmail(body.email);
        // Already a member: the organisation knows this person (its member list shows them).
        if (user && (await directory.getMembership(params.org, user.id))) {
          await changeRole(principal, params.org, user.id, body.role);
          return { status: 200, body: { userId: user.id, email: user.email, role: body.role } };
        }
        const now = services.now();
        const invitation = { id: newId("minv"), orgId: params.org, email: body.email, role: body.role, invitedBy: signedInPerson(principal).userId, createdAt: now, expiresAt: now + MEMBER_INVITATION_TTL_MS };
        // Stored and audited together, before any mail goes out.
        await services.orgAudit.recordWith(directory, "createMemberInvitation", [invitation], params.org, {
          action: "member.invited",
          actor: auditActor(principal),
          target: invitation.id,
          details: { role: body.role },
          personal: { email: body.email },
        });
        const [org, inviter] = await Promise.all([directory.getOrganisation(params.org), directory.getUser(invitation.invitedBy)]);
        await mailInvitation(body.email, org?.name ?? "an organisation", inviter?.name || "Someone", user !== null);
        return { status: 202, body: { invitation: { id: invitation.id, email: invitation.email, role: invitation.role, expiresAt: invitation.expiresAt } } };
      },
    }),
    route({
      method: "patch",
      path: "/v1/organisations/:org/members/:user",
      auth: "user",
      summary: "Change a member's role (admins; only owners grant, change or remove the owner role; the last owner stays owner).",
      tags: ["organisations"],
      body: z.object({ role: MemberRoleSchema }),
      response: { status: 200, description: "The member with their new role.", schema: z.object({ userId: z.string(), role: MemberRoleSchema }) },
      errors: [ErrorCode.InsufficientRole, ErrorCode.NotFound, ErrorCode.InvalidRequest],
      async handler({ params, principal, body }) {
        requireAdmin(principal, params.org);
        await changeRole(principal, params.org, params.user, body.role);
        return { status: 200, body: { userId: params.user, role: body.role } };
      },
    }),
    route({
      method: "delete",
      path: "/v1/organisations/:org/members/:user",
      auth: "user",
      summary: "Remove a member (admins; only owners remove an owner; the last owner stays); their access ends at once, open sockets included.",
      tags: ["organisations"],
      response: { status: 204, description: "Removed." },
      errors: [ErrorCode.InsufficientRole, ErrorCode.NotFound, ErrorCode.InvalidRequest],
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const current = await directory.getMembership(params.org, params.user);
        if (!current) throw new ParleyError(ErrorCode.NotFound, "no such member");
        requireOwnerFor(principal, current, null);
        const event = { action: "member.removed", actor: auditActor(principal), target: params.user } as const;
        if (!(await services.orgAudit.recordWith(directory, "removeMember", [params.org, params.user], params.org, event))) {
          throw new ParleyError(ErrorCode.NotFound, "no such member");
        }
        events.emit({ kind: "membership-changed", orgId: params.org, userId: params.user });
        return { status: 204 };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/member-invitations",
      auth: "user",
      summary: "The organisation's pending membership invitations (admins).",
      tags: ["organisations"],
      response: { status: 200, description: "Invitations not yet accepted, declined or revoked.", schema: ItemsOf(InvitationView) },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const items = await directory.listMemberInvitations(params.org);
        return { status: 200, body: { items: items.map(({ id, email, role, expiresAt }) => ({ id, email, role, expiresAt })) } };
      },
    }),
    route({
      method: "delete",
      path: "/v1/organisations/:org/member-invitations/:id",
      auth: "user",
      summary: "Revoke a pending membership invitation (admins).",
      tags: ["organisations"],
      response: { status: 204, description: "Revoked." },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        // Another organisation's invitation answers like a missing one: the statement is scoped to this one.
        const event = { action: "member.invitation-revoked", actor: auditActor(principal), target: params.id } as const;
        if (!(await services.orgAudit.recordWith(directory, "revokeMemberInvitation", [params.org, params.id, services.now()], params.org, event))) {
          throw new ParleyError(ErrorCode.NotFound, "no such invitation");
        }
        return { status: 204 };
      },
    }),
    route({
      method: "get",
      path: "/v1/me/member-invitations",
      auth: "user",
      allowBeforeTwoFactor: true,
      summary: "The invitations to join an organisation addressed to you.",
      tags: ["organisations"],
      response: { status: 200, description: "Live invitations, with the inviting organisation.", schema: ItemsOf(z.object({ id: z.string(), organisation: z.object({ id: z.string(), name: z.string().nullable() }), role: MemberRoleSchema, expiresAt: z.number() })) },
      async handler({ principal }) {
        const me = await directory.getUser(signedInPerson(principal).userId);
        const items = me ? await directory.listMemberInvitationsForEmail(me.email, services.now()) : [];
        return { status: 200, body: { items: items.map(({ id, orgId, orgName, role, expiresAt }) => ({ id, organisation: { id: orgId, name: orgName }, role, expiresAt })) } };
      },
    }),
    route({
      method: "post",
      path: "/v1/me/member-invitations/:id/accept",
      auth: "user",
      allowBeforeTwoFactor: true,
      summary: "Accept an invitation addressed to you: you become a member with its role (sign in for that organisation next).",
      tags: ["organisations"],
      response: { status: 200, description: "The membership.", schema: z.object({ organisation: z.object({ id: z.string() }), role: MemberRoleSchema }) },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal }) {
        const person = signedInPerson(principal);
        Id.parse(params.id);
        const me = await directory.getUser(person.userId);
        const now = services.now();
        // Only a live invitation addressed to this person names the organisation whose chain records the join.
        const invitation = me ? (await directory.listMemberInvitationsForEmail(me.email, now)).find((i) => i.id === params.id) : undefined;
        const event = { action: "member.joined", actor: `user:${person.userId}`, target: params.id, details: { role: invitation?.role ?? "member" } } as const;
        // The membership and its audit entry in one transaction.
        const joined =
          me && invitation ? await services.orgAudit.recordWith(directory, "acceptMemberInvitation", [params.id, { id: me.id, email: me.email }, now], invitation.orgId, event) : null;
        // Someone else's, used, revoked, expired or unknown: all the same answer.
        if (!joined) throw new ParleyError(ErrorCode.NotFound, "no such invitation");
        events.emit({ kind: "membership-changed", orgId: joined.orgId, userId: person.userId });
        return { status: 200, body: { organisation: { id: joined.orgId }, role: joined.role } };
      },
    }),
    route({
      method: "post",
      path: "/v1/me/member-invitations/:id/decline",
      auth: "user",
      allowBeforeTwoFactor: true,
      summary: "Decline an invitation addressed to you.",
      tags: ["organisations"],
      response: { status: 204, description: "Declined." },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal }) {
        const me = await directory.getUser(signedInPerson(principal).userId);
        if (!me || !(await directory.declineMemberInvitation(params.id, me.email, services.now()))) throw new ParleyError(ErrorCode.NotFound, "no such invitation");
        return { status: 204 };
      },
    }),
  ];
}
