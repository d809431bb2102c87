// GET /v1/events: an organisation's events in pages, for catching up or resynchronising without
// keeping a stream open. The live stream (SSE) is in event-stream-route.ts; both use the same
// cursors, so a consumer can page up to the head and then stream from there.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import type { RouteDefinition } from "../http/route.ts";
import { route } from "../http/route.ts";
import { requireEventReader } from "./event-access.ts";
import { cursorError } from "./event-follower.ts";
import type { EventStore } from "./event-store.ts";
import { parseTypes } from "./event-stream-route.ts";
import { EventView, ItemsOf } from "../http/response-schemas.ts";

/** The event paging route. */
export function eventRoutes(deps: { store: EventStore }): RouteDefinition[] {
  return [
    route({
      method: "get",
      path: "/v1/events",
      auth: "principal",
      summary:
        "Your organisation's events after `after` (default: the oldest kept), oldest first. API keys and admins/owners. Continue with `after=nextCursor` while `hasMore`.",
      tags: ["events"],
      query: z.object({
        after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        types: z.string().max(1000).optional().describe("comma-separated event types"),
      }),
      response: { status: 200, description: "`items` (events), `nextCursor`, `hasMore` and the stream's `head`.", schema: ItemsOf(EventView).extend({ nextCursor: z.number(), hasMore: z.boolean(), head: z.number() }) },
      errors: [ErrorCode.EventCursorExpired, ErrorCode.Forbidden, ErrorCode.InsufficientRole],
      async handler({ query, principal }) {
        requireEventReader(principal);
        const types = parseTypes(query.types);
        let after = query.after ?? 0;
        let read = await deps.store.read(principal.orgId, after, query.limit, types);
        // No cursor given: start at the oldest event still kept.
        if (read.status === "expired" && query.after === undefined) {
          after = read.prunedThrough;
          read = await deps.store.read(principal.orgId, after, query.limit, types);
        }
        if (read.status !== "ok") throw cursorError(read, after);
        const items = read.events.map((event) => JSON.parse(event.json) as unknown);
        const nextCursor = read.events.length > 0 ? read.events[read.events.length - 1].cursor : after;
        return { status: 200, body: { items, nextCursor, hasMore: read.events.length === query.limit && nextCursor < read.head, head: read.head } };
      },
    }),
  ];
}
