// GET /v1/organisations/:org/security-notices: the organisation's notice history for its owners
// and admins, oldest first, paged like the event API (after=nextCursor while hasMore).

import { z } from "zod";
import { route } from "../http/route.ts";
import { ItemsOf, NoticeEventView } from "../http/response-schemas.ts";
import { requireAdmin } from "../http/principal.ts";
import type { SecurityNotices } from "./security-notices.ts";

/** The notice routes. */
export function noticeRoutes(notices: SecurityNotices) {
  return [
    route({
      method: "get",
      path: "/v1/organisations/:org/security-notices",
      auth: "user",
      summary: "The organisation's security notices (owners and admins), oldest first; continue with after=nextCursor while hasMore.",
      tags: ["security"],
      query: z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(200).default(50) }),
      response: { status: 200, description: "`items` (security.notice events), `nextCursor`, `hasMore`.", schema: ItemsOf(NoticeEventView).extend({ nextCursor: z.number(), hasMore: z.boolean() }) },
      async handler({ params, principal, query }) {
        requireAdmin(principal, params.org);
        return { status: 200, body: await notices.history(params.org, query.after, query.limit) };
      },
    }),
  ];
}
