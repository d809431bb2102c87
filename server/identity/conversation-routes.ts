// Conversations over HTTP: start one (with participant organisations and invited people), list
// and read what you may see, close and reopen, manage participants and invitations, and post a
// message through the same durable, audited write path as the sockets.

import * as Y from "yjs";
import { z } from "zod";
import { appendMessage, ErrorCode } from "../../protocol/index.ts";
import { attributedMessages } from "../documents/attributed-messages.ts";
import { materialise } from "../platform/bounded-content.ts";
import { auditActor } from "../directory/org-recorder.ts";
import type { AccessDirectory } from "../directory/access-directory.ts";
import type { AccountDirectory } from "../directory/account-directory.ts";
import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import type { AuditedChangesOf } from "../directory/directory.ts";
import type { ConversationRecord } from "../directory/directory-types.ts";
import type { InvitationDirectory } from "../directory/invitation-directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import { eventActor } from "../events/event-recorder.ts";
import { accessorOf } from "./access-control.ts";
import type { InvitationService } from "./invitation-service.ts";
import { actorId, type Principal } from "../http/principal.ts";
import { route } from "../http/route.ts";
import type { HttpServices } from "./http-services.ts";
import { newId } from "./auth-routes.ts";
import {
  AuthorsPage,
  ConversationCreated,
  ConversationPage,
  ConversationView,
  InvitationSent,
  ItemsOf,
  MessagePosted,
  MessagesPage,
} from "../http/response-schemas.ts";
import { Email, Id, Name, ParticipantRole } from "../http/schemas.ts";

const Invitee = z.object({ email: Email, role: ParticipantRole.default("participant") });
const Participant = z.object({ organisation: Id, role: ParticipantRole.default("participant") });

function encodeCursor(conversation: ConversationRecord): string {
  return Buffer.from(JSON.stringify([conversation.createdAt, conversation.id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString()) as [unknown, unknown];
    if (typeof createdAt === "number" && typeof id === "string") return { createdAt, id };
  } catch {
    // fall through
  }
  throw new ParleyError(ErrorCode.InvalidRequest, "cursor: invalid");
}

/**
 * What the conversation routes use beside the invitation service: the conversations and their
 * parties (participants added and removed audited), names to show, the document cache and the
 * write path for messages, and the events a change raises.
 */
export type ConversationRouteServices = Pick<HttpServices, "access" | "events" | "partnerEvents" | "orgAudit" | "cache" | "writePath" | "lastActivity" | "now"> & {
  directory: Pick<
    ConversationDirectory,
    "createConversation" | "getConversation" | "listConversations" | "setConversationStatus" | "listParticipants" | "listPeople"
  > &
    Pick<OrganisationDirectory, "getOrganisation"> &
    Pick<AccountDirectory, "getUser"> &
    Pick<InvitationDirectory, "getInvitation" | "listInvitations"> &
    Pick<AccessDirectory, "listSupportGrants"> &
    AuditedChangesOf<"putParticipant" | "removeParticipant">;
};

/** The conversation routes. */
export function conversationRoutes(services: ConversationRouteServices, invitations: InvitationService) {
  const { directory, access, events, partnerEvents } = services;

  const describe = async (conversation: ConversationRecord, principal: Principal) => ({
    ...conversation,
    role: await access.roleFor(accessorOf(principal), conversation.id),
    participants: await directory.listParticipants(conversation.id),
    people: await directory.listPeople(conversation.id),
  });

  const inviterName = async (principal: Principal) => {
    const org = await directory.getOrganisation(principal.orgId);
    if (principal.kind === "user") {
      const user = await directory.getUser(principal.userId);
      return `${user?.name ?? "Someone"} (${org?.name ?? "an organisation"})`;
    }
    return org?.name ?? "An organisation";
  };

  const inviteAll = async (conversation: ConversationRecord, principal: Principal, invitees: z.infer<typeof Invitee>[]) => {
    const name = await inviterName(principal);
    const created = [];
    for (const invitee of invitees) {
      const invitation = await invitations.invite({
        conversationId: conversation.id,
        conversationTitle: conversation.title,
        email: invitee.email,
        role: invitee.role,
        invitedByOrg: principal.orgId,
        invitedBy: actorId(principal),
        inviterName: name,
      });
      created.push({ id: invitation.id, email: invitation.email, role: invitation.role, expiresAt: invitation.expiresAt });
    }
    return created;
  };

  return [
    route({
      method: "post",
      path: "/v1/conversations",
      auth: "principal",
      summary: "Start a conversation, optionally with participant organisations and people invited by email.",
      tags: ["conversations"],
      body: z.object({
        title: Name,
        externalRef: z.string().trim().min(1).max(200).optional().describe("the partner's reference, e.g. a ticket number"),
        participants: z.array(Participant).max(50).default([]),
        invitations: z.array(Invitee).max(50).default([]),
      }),
      response: { status: 201, description: "The conversation, with the invitations sent.", schema: ConversationCreated },
      errors: [ErrorCode.NotFound],
      async handler({ body, principal }) {
        if (principal.kind === "apiKey" && !principal.scopes.includes("conversations:write")) {
          throw new ParleyError(ErrorCode.Forbidden, "this API key lacks the conversations:write scope");
        }
        const conversation = {
          id: newId("cnv"),
          orgId: principal.orgId,
          title: body.title,
          externalRef: body.externalRef ?? null,
          createdBy: actorId(principal),
        };
        const participants = body.participants
          .filter((p) => p.organisation !== principal.orgId)
          .map((p) => ({ orgId: p.organisation, role: p.role }));
        await directory.createConversation(conversation, participants, services.now());
        const record = await directory.getConversation(conversation.id);
        if (!record) throw new ParleyError(ErrorCode.Internal, "conversation vanished");
        const created = { title: record.title, externalRef: record.externalRef, startedBy: record.orgId, actor: eventActor(principal) };
        await partnerEvents.record("conversation.created", record.id, created);
        const sent = await inviteAll(record, principal, body.invitations);
        return { status: 201, body: { ...(await describe(record, principal)), invitations: sent } };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations",
      auth: "principal",
      summary: "Conversations you may see, newest first, paged with `cursor`; filter by `externalRef`.",
      tags: ["conversations"],
      query: z.object({
        limit: z.coerce.number().int().min(1).max(100).default(25),
        cursor: z.string().max(200).optional(),
        externalRef: z.string().max(200).optional(),
      }),
      response: { status: 200, description: "A page: `items` (each with its starting organisation's name, its participant organisations and `lastActivityAt`, the time of its last change or else its creation) and `nextCursor` (absent on the last page).", schema: ConversationPage },
      async handler({ query, principal }) {
        const items = await directory.listConversations(accessorOf(principal), {
          limit: query.limit + 1,
          before: query.cursor ? decodeCursor(query.cursor) : undefined,
          externalRef: query.externalRef,
        });
        const page = items.slice(0, query.limit);
        const nextCursor = items.length > query.limit ? encodeCursor(page[page.length - 1]) : undefined;
        // Each item names the organisations taking part, for lists that show who is in it.
        const described = [];
        const orgNames = new Map<string, string>();
        const activity = await services.lastActivity(page.map((item) => item.id));
        for (const item of page) {
          if (!orgNames.has(item.orgId)) orgNames.set(item.orgId, (await directory.getOrganisation(item.orgId))?.name ?? item.orgId);
          described.push({
            ...item,
            orgName: orgNames.get(item.orgId),
            participants: await directory.listParticipants(item.id),
            lastActivityAt: activity.get(item.id) ?? item.createdAt,
          });
        }
        return { status: 200, body: { items: described, nextCursor } };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id",
      auth: "principal",
      openToConversationSessions: true,
      summary: "One conversation with its participants, people and your role.",
      tags: ["conversations"],
      response: { status: 200, description: "The conversation.", schema: ConversationView },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal }) {
        const { conversation } = await access.require(principal, params.id, "read");
        return { status: 200, body: await describe(conversation, principal) };
      },
    }),
    ...(["close", "reopen"] as const).map((action) =>
      route({
        method: "post",
        path: `/v1/conversations/:id/${action}`,
        auth: "principal",
        summary: action === "close" ? "Close a conversation: it becomes read-only for everyone." : "Reopen a closed conversation.",
        tags: ["conversations"],
        response: { status: 200, description: "The conversation.", schema: ConversationView },
        async handler({ params, principal }) {
          // A closed conversation is read-only, so reopening checks ownership through the directory.
          const conversation = await directory.getConversation(params.id);
          const role = conversation ? await access.roleFor(accessorOf(principal), params.id) : null;
          if (!conversation || !role) throw new ParleyError(ErrorCode.NotFound, "no such conversation");
          if (conversation.orgId !== principal.orgId) throw new ParleyError(ErrorCode.InsufficientRole, "only the starting organisation may do this");
          await directory.setConversationStatus(params.id, action === "close" ? "closed" : "open");
          events.emit({ kind: "conversation-access-changed", conversationId: params.id });
          await partnerEvents.record(action === "close" ? "conversation.closed" : "conversation.reopened", params.id, { actor: eventActor(principal) });
          const updated = await directory.getConversation(params.id);
          return { status: 200, body: updated && (await describe(updated, principal)) };
        },
      }),
    ),
    route({
      method: "post",
      path: "/v1/conversations/:id/participants",
      auth: "principal",
      summary: "Add (or change the role of) a participant organisation.",
      tags: ["conversations"],
      body: Participant,
      response: { status: 200, description: "The conversation.", schema: ConversationView },
      async handler({ params, principal, body }) {
        const conversation = await access.requireOwner(principal, params.id);
        if (body.organisation === conversation.orgId) throw new ParleyError(ErrorCode.InvalidRequest, "the starting organisation always takes part");
        // Added with its entry in both organisations' chains, or not at all.
        await services.orgAudit.recordWith(directory, "putParticipant", [params.id, body.organisation, body.role, services.now()], [principal.orgId, body.organisation], {
          action: "participant.added",
          actor: auditActor(principal),
          target: body.organisation,
          details: { conversation: params.id, role: body.role },
        });
        events.emit({ kind: "conversation-access-changed", conversationId: params.id });
        await partnerEvents.record("participant.added", params.id, { organisation: body.organisation, role: body.role, actor: eventActor(principal) });
        return { status: 200, body: await describe(conversation, principal) };
      },
    }),
    route({
      method: "delete",
      path: "/v1/conversations/:id/participants/:org",
      auth: "principal",
      summary: "Remove a participant organisation; its people lose access at once, sockets included.",
      tags: ["conversations"],
      response: { status: 204, description: "Removed." },
      async handler({ params, principal }) {
        await access.requireOwner(principal, params.id);
        const removed = { action: "participant.removed", actor: auditActor(principal), target: params.org, details: { conversation: params.id } } as const;
        if (!(await services.orgAudit.recordWith(directory, "removeParticipant", [params.id, params.org], [principal.orgId, params.org], removed))) {
          throw new ParleyError(ErrorCode.NotFound, "no such participant");
        }
        events.emit({ kind: "conversation-access-changed", conversationId: params.id });
        // The removed organisation hears of it too (its last event about this conversation).
        await partnerEvents.record("participant.removed", params.id, { organisation: params.org, actor: eventActor(principal) }, { alsoTo: [params.org] });
        return { status: 204 };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/messages",
      auth: "principal",
      openToConversationSessions: true,
      summary: "The conversation's messages, oldest first.",
      tags: ["messages"],
      response: { status: 200, description: "Messages and the sequence number they reflect.", schema: MessagesPage },
      async handler({ params, principal }) {
        await access.require(principal, params.id, "read");
        const { doc: cached, index } = await services.cache.withIndex(params.id);
        const seq = cached.headSeq;
        // Within the read limits: stored content too deep to load fails this request only (5005).
        const doc = materialise(cached.state());
        try {
          // Authors come from the log (who wrote each entry), never from the entries' own fields.
          return { status: 200, body: { items: attributedMessages(doc, (client) => index.ownerOf(client)), seq } };
        } finally {
          doc.destroy();
        }
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/authors",
      auth: "principal",
      summary: "Display names of the people who wrote in the conversation, with their organisations' names (for showing messages).",
      tags: ["messages"],
      response: { status: 200, description: "`items`: `{ user, name, org, orgName }` per author.", schema: AuthorsPage },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal }) {
        await access.require(principal, params.id, "read");
        const { doc: cached, index } = await services.cache.withIndex(params.id);
        const doc = new Y.Doc();
        Y.applyUpdate(doc, cached.state());
        const pairs = new Map<string, { user: string; org: string }>();
        // The writers of the entries (from the log), as GET …/messages reports them.
        for (const m of attributedMessages(doc, (client) => index.ownerOf(client))) pairs.set(`${m.authorUser}\u0000${m.authorOrg}`, { user: m.authorUser, org: m.authorOrg });
        doc.destroy();
        const orgNames = new Map<string, string>();
        const items = [];
        for (const { user, org } of pairs.values()) {
          if (!orgNames.has(org)) orgNames.set(org, (await directory.getOrganisation(org))?.name ?? org);
          const person = await directory.getUser(user);
          items.push({ user, name: person?.name ?? user, org, orgName: orgNames.get(org) ?? org });
        }
        return { status: 200, body: { items } };
      },
    }),
    route({
      method: "post",
      path: "/v1/conversations/:id/messages",
      auth: "principal",
      openToConversationSessions: true,
      summary: "Post a message; answered once it is durable and audited, with its sequence number.",
      tags: ["messages"],
      body: z.object({ text: z.string().min(1).max(20_000) }),
      response: { status: 201, description: "The message and its sequence number.", schema: MessagePosted },
      errors: [ErrorCode.NotFound, ErrorCode.ReadOnly, ErrorCode.DocumentLimit],
      async handler({ params, principal, body, requestId }) {
        await access.require(principal, params.id, "write");
        // Materialise the document (off the hot path: HTTP posts are rare next to socket updates)
        // so the append lands after the current last message.
        const doc = new Y.Doc();
        Y.applyUpdate(doc, (await services.cache.get(params.id)).state());
        let update: Uint8Array | null = null;
        doc.on("update", (u: Uint8Array) => {
          update = u;
        });
        const message = { id: newId("msg"), authorUser: actorId(principal), authorOrg: principal.orgId, text: body.text, createdAt: services.now() };
        appendMessage(doc, message);
        if (!update) throw new ParleyError(ErrorCode.Internal, "no update produced");
        const seq = await services.writePath.submit(params.id, update, { user: message.authorUser, org: message.authorOrg, session: `http:${requestId}` });
        return { status: 201, body: { message, seq } };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/support-access",
      auth: "principal",
      summary: "Every time Parley support was given read-only access to this conversation: who, why, until when.",
      tags: ["conversations"],
      response: {
        status: 200,
        description: "Support grants, oldest first.",
        schema: ItemsOf(
          z.object({
            id: z.string(),
            operator: z.string().describe("who at the operator"),
            conversationId: z.string(),
            reason: z.string(),
            grantedAt: z.number(),
            expiresAt: z.number(),
            revokedAt: z.number().nullable(),
          }),
        ),
      },
      async handler({ params, principal }) {
        await access.require(principal, params.id, "read");
        return { status: 200, body: { items: await directory.listSupportGrants(params.id) } };
      },
    }),
    route({
      method: "post",
      path: "/v1/conversations/:id/invitations",
      auth: "principal",
      summary: "Invite a person by email; they get a link valid 14 days.",
      tags: ["invitations"],
      body: Invitee,
      response: { status: 201, description: "The invitation (the link goes only to the invited address).", schema: InvitationSent },
      async handler({ params, principal, body }) {
        const conversation = await access.requireOwner(principal, params.id);
        const [sent] = await inviteAll(conversation, principal, [body]);
        return { status: 201, body: sent };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/invitations",
      auth: "principal",
      summary: "The conversation's invitations (never their links).",
      tags: ["invitations"],
      response: {
        status: 200,
        description: "Invitations.",
        schema: ItemsOf(
          InvitationSent.extend({
            conversationId: z.string(),
            invitedByOrg: z.string(),
            invitedBy: z.string(),
            createdAt: z.number(),
            revokedAt: z.number().nullable(),
            userId: z.string().nullable().describe("the person it signed in (after first use)"),
          }),
        ),
      },
      async handler({ params, principal }) {
        await access.requireOwner(principal, params.id);
        const items = (await directory.listInvitations(params.id)).map(({ deviceHash: _hidden, ...invitation }) => invitation);
        return { status: 200, body: { items } };
      },
    }),
    route({
      method: "delete",
      path: "/v1/invitations/:id",
      auth: "principal",
      summary: "Revoke an invitation; the link stops working and the invited person loses access.",
      tags: ["invitations"],
      response: { status: 204, description: "Revoked." },
      async handler({ params, principal }) {
        const invitation = await directory.getInvitation(params.id);
        // Another organisation's invitation answers exactly like a missing one (same status, code
        // and message, asked before any check that could tell them apart).
        if (!invitation || invitation.invitedByOrg !== principal.orgId) throw new ParleyError(ErrorCode.NotFound, "no such invitation");
        await access.requireOwner(principal, invitation.conversationId);
        await invitations.revoke(invitation, eventActor(principal));
        return { status: 204 };
      },
    }),
  ];
}
