// Schemas of response bodies, for the OpenAPI document and the tests that check every response
// against it. Objects are closed (`z.object`: additionalProperties false in the document), so a
// field the server sends but does not declare fails the test that received it, and a generated
// client's types are exact. Clients should still ignore fields they do not know: adding one is
// how the API grows without a new version.

import { z } from "zod";
import { EVENT_TYPES, type EventType } from "../../protocol/index.ts";
import { MemberRole, ParticipantRole } from "./schemas.ts";

/** `{ items: [...] }`. */
export const ItemsOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

const Role = z.enum(["writer", "observer"]);

/** An organisation as its members and admins read it. */
export const OrganisationRecordView = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.number(),
  require2fa: z.boolean(),
  requireSecurityKey: z.boolean(),
  ipAllowlist: z.array(z.string()),
  retentionDays: z.number(),
});

export const ParticipantView = z.object({ orgId: z.string(), orgName: z.string(), role: ParticipantRole });

export const InvitationSent = z.object({ id: z.string(), email: z.string(), role: ParticipantRole, expiresAt: z.number() });

const ConversationFields = {
  id: z.string(),
  orgId: z.string(),
  title: z.string(),
  externalRef: z.string().nullable(),
  status: z.enum(["open", "closed"]),
  createdAt: z.number(),
  createdBy: z.string().describe("user id, or `key:<id>` for an API key"),
};

export const ConversationView = z.object({
  ...ConversationFields,
  role: Role.nullable().describe("how you may use it: writer, observer, or null (support access)"),
  participants: z.array(ParticipantView),
  people: z.array(z.object({ userId: z.string(), email: z.string(), role: ParticipantRole })),
});

export const ConversationCreated = ConversationView.extend({ invitations: z.array(InvitationSent) });

export const ConversationPage = z.object({
  items: z.array(
    z.object({
      ...ConversationFields,
      orgName: z.string(),
      participants: z.array(ParticipantView),
      lastActivityAt: z.number().describe("time of its last change, or else its creation"),
    }),
  ),
  nextCursor: z.string().optional().describe("absent on the last page"),
});

/** A message as read: attributed by the log, with the author's retraction when there is one. */
export const MessageView = z.object({
  id: z.string(),
  authorUser: z.string(),
  authorOrg: z.string(),
  text: z.string(),
  createdAt: z.number(),
  retracted: z.object({ id: z.string(), createdAt: z.number() }).optional().describe("set when the author took it back"),
});

export const MessagesPage = z.object({ items: z.array(MessageView), seq: z.number() });

export const MessagePosted = z.object({ message: MessageView.omit({ retracted: true }), seq: z.number() });

export const AuthorsPage = ItemsOf(z.object({ user: z.string(), name: z.string(), org: z.string(), orgName: z.string() }));

/** A chain head: its last `seq` and that entry's hash in hex. */
const ChainHeadView = z.object({ seq: z.number(), hash: z.string().describe("hex") });

const VerificationCounts = {
  chain: z.string(),
  checkpoints: z.number(),
  pinned: z.number(),
  checkpointFailure: z.object({ interval: z.number(), reason: z.string() }).optional(),
};

/** An audit chain's verification: `ok` with `entries` and `head`, or the first broken `seq` and `reason`. */
export const AuditVerificationView = z.union([
  z.object({ ok: z.literal(true), entries: z.number(), head: ChainHeadView, ...VerificationCounts }),
  z.object({ ok: z.literal(false), seq: z.number(), reason: z.string(), ...VerificationCounts }),
]);

const EventActorView = z.object({ id: z.string().describe("user id, or `key:<id>`"), org: z.string() });

/** The payload of each event type (protocol/events.ts). */
const EVENT_DATA: { [T in EventType]: z.ZodType } = {
  "conversation.created": z.object({ title: z.string(), externalRef: z.string().nullable(), startedBy: z.string(), actor: EventActorView }),
  "conversation.closed": z.object({ actor: EventActorView }),
  "conversation.reopened": z.object({ actor: EventActorView }),
  "participant.added": z.object({ organisation: z.string(), role: ParticipantRole, actor: EventActorView }),
  "participant.removed": z.object({ organisation: z.string(), actor: EventActorView }),
  "invitation.sent": z.object({ invitation: z.string(), email: z.string(), role: ParticipantRole, expiresAt: z.number(), actor: EventActorView }),
  "invitation.opened": z.object({ invitation: z.string() }),
  "invitation.accepted": z.object({ invitation: z.string(), user: z.string() }),
  "invitation.revoked": z.object({ invitation: z.string(), actor: EventActorView }),
  "message.created": z.object({ message: MessageView.omit({ retracted: true }), seq: z.number() }),
  "notes.changed": z.object({ text: z.string(), length: z.number(), truncated: z.boolean(), seq: z.number() }),
  "security.notice": z.object({
    notice: z.string(),
    summary: z.string(),
    advice: z.string(),
    at: z.number(),
    from: z.object({ ip: z.string().nullable(), userAgent: z.string().nullable() }),
    subject: z.string(),
  }),
};

const eventOf = (type: EventType) =>
  z.object({ id: z.string(), cursor: z.number(), type: z.literal(type), occurredAt: z.number(), conversation: z.string(), data: EVENT_DATA[type] });

/** One partner event, as the paging API, the SSE stream and webhook bodies carry it. */
export const EventView = z.discriminatedUnion(
  "type",
  EVENT_TYPES.map(eventOf) as unknown as [ReturnType<typeof eventOf>, ...ReturnType<typeof eventOf>[]],
);

/** A security notice event. */
export const NoticeEventView = eventOf("security.notice");

/** A member of an organisation, or a pending invitation to become one. */
export const MemberView = z.object({ userId: z.string(), email: z.string(), name: z.string(), role: MemberRole });
