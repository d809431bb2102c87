// Deletion and retention over HTTP. Who may do what, decided here:
// - deleting an organisation's side of a conversation, and placing or lifting its legal hold:
//   an admin or owner of a party to the conversation (its starting or a participant organisation),
//   acting for that party. Each party holds and lifts its own hold; one party cannot lift another's.
//   A party that deleted its side may still place or lift its hold (holds are about keeping, not
//   reading), so a hold never outlives the only people allowed to lift it.
// - deleting a person: the person themself, or an admin or owner of an organisation they belong to.
// - the retention period: an admin or owner of the organisation, within RETENTION_BOUNDS.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { ConversationParty } from "../directory/directory-types.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import type { RetentionDirectory } from "../directory/retention-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import { actorId, type Principal, type UserPrincipal } from "../http/principal.ts";
import { route } from "../http/route.ts";
import type { HttpServices } from "../identity/http-services.ts";
import { accessorOf } from "../identity/access-control.ts";
import type { ConversationLifecycle } from "./conversation-lifecycle.ts";
import { ItemsOf, OrganisationRecordView } from "../http/response-schemas.ts";


const SideDeletionView = z.object({
  destroyed: z.boolean().describe("this was the last side: the conversation is destroyed"),
  remainingParties: z.array(z.string()).describe("organisations whose side is still there"),
  legalHolds: z.array(z.string()).describe("organisations holding it under legal hold"),
});
const LegalHoldView = z.object({ conversationId: z.string(), orgId: z.string(), setBy: z.string(), reason: z.string(), setAt: z.number() });
/** The retention periods an organisation may choose, in days: at least a week (a typo must not wipe a year), at most ten years. */
export const RETENTION_BOUNDS = { min: 7, max: 3650 } as const;

/** What the deletion and retention routes use beside the lifecycle: the parties and holds to decide who may, access checks, the retention setting. */
export type LifecycleRouteServices = Pick<HttpServices, "access" | "now"> & {
  directory: Pick<RetentionDirectory, "listConversationParties" | "listLegalHolds"> &
    Pick<OrganisationDirectory, "getMembership" | "listMemberships" | "getOrganisation" | "updateOrganisation">;
};

export interface LifecycleRouteDeps {
  services: LifecycleRouteServices;
  lifecycle: ConversationLifecycle;
}

function isAdmin(principal: Principal): principal is UserPrincipal {
  return principal.kind === "user" && (principal.role === "admin" || principal.role === "owner");
}

/** The audit actor of a person. */
function userActor(principal: UserPrincipal): string {
  return `user:${actorId(principal)}`;
}

export function lifecycleRoutes({ services, lifecycle }: LifecycleRouteDeps) {
  const { directory } = services;

  /**
   * The caller's party in a conversation, if the caller is an admin of one. A conversation the
   * caller's organisation is not a party to does not exist for it (404, no hint); a party's
   * member without the admin role gets 403.
   */
  const requirePartyAdmin = async (principal: Principal, conversationId: string): Promise<{ party: ConversationParty; actor: string }> => {
    const parties = await directory.listConversationParties(conversationId);
    const party = parties.find((p) => p.orgId === principal.orgId);
    if (!party) {
      // Invited guests see the conversation but are no party to it: they get told, not a 404.
      const role = await services.access.roleFor(accessorOf(principal), conversationId);
      if (role) throw new ParleyError(ErrorCode.InsufficientRole, "only a participating organisation's admins may do this");
      throw new ParleyError(ErrorCode.NotFound, "no such conversation");
    }
    if (!isAdmin(principal)) throw new ParleyError(ErrorCode.InsufficientRole, "this needs the admin or owner role of a participating organisation");
    return { party, actor: userActor(principal) };
  };

  const holdsView = async (conversationId: string) => ({ items: await directory.listLegalHolds(conversationId) });

  return [
    route({
      method: "delete",
      path: "/v1/conversations/:id",
      auth: "principal",
      summary:
        "Delete your organisation's side of a conversation (admins): your people lose access at once, the other organisations keep theirs. The conversation is destroyed when every party has deleted it and no legal hold remains.",
      tags: ["deletion"],
      response: { status: 200, description: "`destroyed`, the parties whose side remains, and the parties holding it under legal hold.", schema: SideDeletionView },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole],
      async handler({ params, principal }) {
        const { party, actor } = await requirePartyAdmin(principal, params.id);
        if (party.sideDeletedAt !== null) throw new ParleyError(ErrorCode.NotFound, "no such conversation");
        const outcome = await lifecycle.deleteSide(params.id, party.orgId, actor, "deleted");
        return { status: 200, body: outcome };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/legal-hold",
      auth: "principal",
      summary: "The legal holds on a conversation (admins of a participating organisation).",
      tags: ["deletion"],
      response: { status: 200, description: "Holds, oldest first.", schema: ItemsOf(LegalHoldView) },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole],
      async handler({ params, principal }) {
        await requirePartyAdmin(principal, params.id);
        return { status: 200, body: await holdsView(params.id) };
      },
    }),
    route({
      method: "put",
      path: "/v1/conversations/:id/legal-hold",
      auth: "user",
      summary: "Place (or renew) your organisation's legal hold: the conversation is not destroyed while any hold remains (admins of a participating organisation).",
      tags: ["deletion"],
      body: z.object({ reason: z.string().trim().min(1).max(500).describe("why, in the organisation's words (recorded in its audit chain)") }),
      response: { status: 200, description: "The holds now on the conversation.", schema: ItemsOf(LegalHoldView) },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole],
      async handler({ params, principal, body }) {
        const { party, actor } = await requirePartyAdmin(principal, params.id);
        const hold = { conversationId: params.id, orgId: party.orgId, setBy: actor, reason: body.reason, setAt: services.now() };
        await lifecycle.recordedChange("putLegalHold", [hold], party.orgId, { action: "legal-hold.placed", actor, target: params.id, details: { reason: body.reason } });
        return { status: 200, body: await holdsView(params.id) };
      },
    }),
    route({
      method: "delete",
      path: "/v1/conversations/:id/legal-hold",
      auth: "user",
      summary: "Lift your organisation's legal hold; if every side is deleted and no other hold remains, the conversation is destroyed now.",
      tags: ["deletion"],
      response: { status: 200, description: "`destroyed`, the parties whose side remains, and the holds that remain.", schema: SideDeletionView },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole],
      async handler({ params, principal }) {
        const { party, actor } = await requirePartyAdmin(principal, params.id);
        const lifted = await lifecycle.recordedChange("removeLegalHold", [params.id, party.orgId], party.orgId, { action: "legal-hold.lifted", actor, target: params.id, details: {} });
        if (!lifted) throw new ParleyError(ErrorCode.NotFound, "your organisation holds no legal hold on this conversation");
        return { status: 200, body: await lifecycle.reconsider(params.id, actor) };
      },
    }),
    route({
      method: "delete",
      path: "/v1/users/:id",
      auth: "user",
      summary:
        "Delete a person: themself, or the owner of the organisation that is the person's only membership. Their personal data is erased, their sessions end; audit entries keep naming their (meaningless) id.",
      tags: ["deletion"],
      response: { status: 204, description: "Erased." },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole, ErrorCode.InvalidRequest],
      async handler({ params, principal }) {
        if (principal.kind !== "user") throw new ParleyError(ErrorCode.InsufficientRole, "people only");
        if (params.id === principal.userId) {
          await lifecycle.erasePerson(params.id, userActor(principal));
          return { status: 204 };
        }
        // Only people of the caller's own organisation are visible to it.
        const role = await directory.getMembership(principal.orgId, params.id);
        if (!role) throw new ParleyError(ErrorCode.NotFound, "no such person");
        // An account belongs to its person: an organisation may delete it only when it is the
        // account's one membership, and only its owners may (checked again inside the erasure).
        if (principal.role !== "owner") throw new ParleyError(ErrorCode.InsufficientRole, "only an owner may delete a member's account");
        const memberships = await directory.listMemberships(params.id);
        if (memberships.length !== 1) {
          throw new ParleyError(ErrorCode.InsufficientRole, "this account belongs to other organisations too: only its person may delete it (remove the member instead)");
        }
        await lifecycle.erasePerson(params.id, userActor(principal), { onlyMemberOf: principal.orgId });
        return { status: 204 };
      },
    }),
    route({
      method: "put",
      path: "/v1/organisations/:org/retention",
      auth: "user",
      summary: `Set the organisation's retention period in days (${RETENTION_BOUNDS.min}–${RETENTION_BOUNDS.max}; default 365): its side of a conversation inactive that long is deleted by the server (admins).`,
      tags: ["deletion"],
      body: z.object({ days: z.number().int().min(RETENTION_BOUNDS.min).max(RETENTION_BOUNDS.max) }),
      response: { status: 200, description: "The organisation.", schema: OrganisationRecordView },
      errors: [ErrorCode.NotFound, ErrorCode.InsufficientRole, ErrorCode.InvalidRequest],
      async handler({ params, principal, body }) {
        if (principal.orgId !== params.org) throw new ParleyError(ErrorCode.NotFound, "no such organisation");
        if (!isAdmin(principal)) throw new ParleyError(ErrorCode.InsufficientRole, "this needs the admin or owner role");
        await directory.updateOrganisation(params.org, { retentionDays: body.days });
        return { status: 200, body: await directory.getOrganisation(params.org) };
      },
    }),
  ];
}
