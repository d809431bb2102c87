// Schemas of response bodies, for the OpenAPI document and the tests that check every response
// against it. Objects are loose (extra fields allowed) so adding a field is never a breaking
// change; the fields listed are the ones clients may rely on.

import { z } from "zod";

/** Any JSON object (a route whose body is described in its summary only). */
export const JsonObject = z.looseObject({});

/** `{ items: [...] }` of loose objects. */
export const ItemsOf = (item: z.ZodType = JsonObject) => z.looseObject({ items: z.array(item) });

const Role = z.enum(["writer", "observer"]);

export const ParticipantView = z.looseObject({ orgId: z.string(), orgName: z.string(), role: z.enum(["participant", "observer"]) });

export const InvitationSent = z.looseObject({ id: z.string(), email: z.string(), role: z.string(), expiresAt: z.number() });

export const ConversationView = z.looseObject({
  id: z.string(),
  orgId: z.string(),
  title: z.string(),
  externalRef: z.string().nullable(),
  status: z.string(),
  createdAt: z.number(),
  createdBy: z.string(),
  role: Role.nullable(),
  participants: z.array(ParticipantView),
  people: z.array(z.looseObject({ userId: z.string(), role: z.string() })),
});

export const ConversationCreated = ConversationView.extend({ invitations: z.array(InvitationSent) });

export const ConversationPage = z.looseObject({
  items: z.array(z.looseObject({ id: z.string(), orgId: z.string(), title: z.string(), participants: z.array(ParticipantView) })),
  nextCursor: z.string().optional(),
});

export const MessagesPage = z.looseObject({ items: z.array(JsonObject), seq: z.number() });

export const MessagePosted = z.looseObject({ message: JsonObject, seq: z.number() });

export const AuthorsPage = ItemsOf(z.looseObject({ user: z.string(), org: z.string() }));

/** An audit chain's verification: `ok` with `entries` and `head` (hash in hex), or the first broken `seq` and `reason`. */
export const AuditVerificationView = z.looseObject({ ok: z.boolean(), chain: z.string(), checkpoints: z.number(), pinned: z.number() });
