// Time travel over HTTP: read a conversation as it was at a past sequence number or moment, list
// its change points for a timeline, and restore it to a past point as a new, attributed change
// through the normal write path (history is never rewritten).

import { materialise } from "../platform/bounded-content.ts";
import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { attributedMessages } from "../documents/attributed-messages.ts";
import { RESTORE_SESSION } from "../documents/client-owners.ts";
import { auditActor } from "../directory/org-recorder.ts";
import type { ConversationRecord } from "../directory/directory-types.ts";
import type { Config } from "../platform/config.ts";
import { ParleyError } from "../platform/errors.ts";
import { actorId } from "../http/principal.ts";
import { route } from "../http/route.ts";
import type { HttpServices } from "../identity/http-services.ts";
import type { Store } from "../store/store.ts";
import { type HistoryPoint, type PastState, stateAt } from "./past-state.ts";
import { renderConversation, restoreEdit } from "./restore-edit.ts";
import { ItemsOf, MessageView } from "../http/response-schemas.ts";

/** What the history routes use: reads through the access checks and the cache, restores through the write path. No directory. */
export interface HistoryDeps {
  services: Pick<HttpServices, "access" | "cache" | "writePath" | "orgAudit"> & { config: Pick<Config, "limits"> };
  /** The log, read directly: history is never in the cache. */
  store: Store;
}


const SeqParam = z
  .string()
  .regex(/^\d{1,15}$/, "expected a sequence number (an integer >= 0)")
  .transform(Number)
  .optional();
const AtParam = z.string().min(1).max(40).optional().describe("an ISO 8601 time (e.g. 2026-01-31T12:00:00Z) or milliseconds since the epoch");
const PointQuery = z.object({ seq: SeqParam, at: AtParam });
const PointBody = z.object({
  seq: z.number().int().min(0).optional(),
  at: z.union([z.number().int(), z.string().min(1).max(40)]).optional().describe("an ISO 8601 time or milliseconds since the epoch"),
});

/** Parses `at` as milliseconds since the epoch or an ISO 8601 time (with a date, a time and a zone). */
function parseMoment(at: string | number): number {
  const ms = typeof at === "number" || /^\d{1,15}$/.test(at) ? Number(at) : /^\d{4}-\d{2}-\d{2}T.+(Z|[+-]\d{2}:?\d{2})$/.test(at) ? Date.parse(at) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new ParleyError(ErrorCode.InvalidRequest, "at: expected an ISO 8601 time with a zone (e.g. 2026-01-31T12:00:00Z) or milliseconds since the epoch");
  }
  return ms;
}

/** Exactly one of `seq` and `at`, as a history point. */
function pointOf(input: { seq?: number; at?: string | number }): HistoryPoint {
  if ((input.seq === undefined) === (input.at === undefined)) throw new ParleyError(ErrorCode.InvalidRequest, "give exactly one of seq and at");
  return input.seq !== undefined ? { seq: input.seq } : { at: parseMoment(input.at as string | number) };
}

/** The history routes. */
export function historyRoutes({ services, store }: HistoryDeps) {
  const { access, cache } = services;

  /** The state at a point, refusing moments before the conversation existed. */
  const pastState = async (conversation: ConversationRecord, point: HistoryPoint): Promise<PastState & { headSeq: number }> => {
    const { headSeq } = await cache.get(conversation.id);
    const past = await stateAt(store, conversation.id, point, headSeq);
    if ("at" in point && past.seq === 0 && point.at < conversation.createdAt) {
      throw new ParleyError(ErrorCode.InvalidRequest, `at: before the conversation was created (${new Date(conversation.createdAt).toISOString()})`);
    }
    return { ...past, headSeq };
  };

  const docOf = (state: Uint8Array) => materialise(state);

  return [
    route({
      method: "get",
      path: "/v1/conversations/:id/history",
      auth: "principal",
      openToConversationSessions: true,
      summary: "The conversation as it was at a past sequence number (`seq`) or moment (`at`), rebuilt from its log.",
      tags: ["history"],
      query: PointQuery,
      response: {
        status: 200,
        description:
          "`items` (messages, attributed to their writers, retractions applied) and `notes` as they were, the conversation's `status` (from the directory), the Yjs `state` (base64), the `seq` and `at` it reflects, and today's `headSeq`.",
        schema: z.object({
          seq: z.number(),
          at: z.number().nullable(),
          headSeq: z.number(),
          items: z.array(MessageView),
          notes: z.string(),
          status: z.enum(["open", "closed"]),
          state: z.string().describe("the Yjs document state, base64"),
        }),
      },
      errors: [ErrorCode.NotFound, ErrorCode.InvalidRequest],
      async handler({ params, principal, query }) {
        const { conversation } = await access.require(principal, params.id, "read");
        const past = await pastState(conversation, pointOf(query));
        const { index } = await cache.withIndex(conversation.id);
        const doc = docOf(past.state);
        try {
          // Authors from the log, status from the directory: never from the document's content.
          const items = attributedMessages(doc, (client) => index.ownerOf(client));
          const { notes } = renderConversation(doc);
          const state = Buffer.from(past.state).toString("base64");
          return { status: 200, body: { seq: past.seq, at: past.at, headSeq: past.headSeq, items, notes, status: conversation.status, state } };
        } finally {
          doc.destroy();
        }
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/changes",
      auth: "principal",
      openToConversationSessions: true,
      summary: "The conversation's change points (seq, time, author), oldest first, paged with `after`, for a timeline.",
      tags: ["history"],
      query: z.object({
        after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      }),
      response: { status: 200, description: "`items`, `nextCursor` (pass as `after`) and `hasMore`.", schema: ItemsOf(
          z.object({
            seq: z.number(),
            at: z.number(),
            actor: z.object({ user: z.string(), org: z.string() }),
            restore: z.boolean().describe("the change is a restore"),
            size: z.number().describe("bytes of the update"),
          }),
        ).extend({ nextCursor: z.number(), hasMore: z.boolean() }),
      },
      errors: [ErrorCode.NotFound],
      async handler({ params, principal, query }) {
        await access.require(principal, params.id, "read");
        const { headSeq } = await cache.get(params.id);
        const entries = await store.readEntries(params.id, query.after, query.limit);
        // Snapshots change no content: they are the server's bookkeeping, not change points.
        const items = entries
          .filter((entry) => entry.kind === "update")
          .map((entry) => ({
            seq: entry.seq,
            at: entry.at,
            actor: { user: entry.user, org: entry.org },
            restore: entry.session.startsWith(RESTORE_SESSION),
            size: entry.size,
          }));
        const nextCursor = entries.length > 0 ? entries[entries.length - 1].seq : query.after;
        return { status: 200, body: { items, nextCursor, hasMore: nextCursor < headSeq } };
      },
    }),
    route({
      method: "post",
      path: "/v1/conversations/:id/restore",
      auth: "principal",
      summary:
        "Restore the conversation to a past `seq` or moment `at`: one new change, attributed to you and audited, that sets the notes and meta to what they were and brings back past messages missing now. It never removes or changes a message.",
      tags: ["history"],
      body: PointBody,
      response: { status: 200, description: "`seq` of the committed change (the current one when nothing differed), `changed`, and `restoredTo` {seq, at}.", schema: z.object({ seq: z.number(), changed: z.boolean(), restoredTo: z.object({ seq: z.number(), at: z.number().nullable() }) }) },
      errors: [ErrorCode.NotFound, ErrorCode.ReadOnly, ErrorCode.InvalidRequest, ErrorCode.UpdateTooLarge, ErrorCode.DocumentLimit, ErrorCode.UnmergeableUpdate],
      async handler({ params, principal, body, requestId }) {
        const { conversation } = await access.require(principal, params.id, "write");
        const past = await pastState(conversation, pointOf(body));
        const { doc: cached, index } = await cache.withIndex(params.id);
        const current = docOf(cached.state());
        const edit = restoreEdit(current, docOf(past.state), (client) => index.ownerOf(client));
        const restoredTo = { seq: past.seq, at: past.at };
        if (!edit) return { status: 200, body: { seq: past.headSeq, changed: false, restoredTo } };
        const actor = { user: actorId(principal), org: principal.orgId, session: `${RESTORE_SESSION}${requestId}` };
        // A restore may bring back a lot at once: it gets the catch-up size limit, not a keystroke's.
        // The same rules as a client's update; only the entries re-added may name their authors.
        const seq = await services.writePath.submit(params.id, edit.update, actor, {
          reAddable: edit.reAdded,
          maxBytes: services.config.limits.maxFrameBytes,
        });
        // Recorded in the restoring organisation's audit chain and, when another, the starting one's.
        for (const org of new Set([principal.orgId, conversation.orgId])) {
          await services.orgAudit.recordOrgEvent(org, {
            action: "conversation.restored",
            actor: auditActor(principal),
            target: params.id,
            details: { seq, restoredToSeq: past.seq },
          });
        }
        return { status: 200, body: { seq, changed: true, restoredTo } };
      },
    }),
  ];
}
