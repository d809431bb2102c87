// The one place that answers "may this caller see or change this conversation?", for HTTP
// requests and socket joins alike, from the directory as it is now (never from a cache that
// could outlive a revocation). Conversations you may not see do not exist for you: 404.

import { ErrorCode, type Role } from "../../protocol/index.ts";
import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import type { Accessor, ConversationRecord } from "../directory/directory-types.ts";
import { ParleyError } from "../platform/errors.ts";
import type { Principal } from "../http/principal.ts";

/** API key scopes. */
export const API_KEY_SCOPES = ["conversations:read", "conversations:write"] as const;
/** One API key scope. */
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** The directory's view of who is asking. */
export function accessorOf(principal: Principal): Accessor {
  return principal.kind === "user" ? { orgId: principal.orgId, userId: principal.userId } : { orgId: principal.orgId };
}

/** Access decisions over the directory. */
export class AccessControl {
  constructor(private readonly directory: Pick<ConversationDirectory, "accessRole" | "getConversation">) {}

  /** The caller's role in a conversation, or null when it may not see it. */
  roleFor(accessor: Accessor, conversationId: string): Promise<Role | null> {
    return this.directory.accessRole(conversationId, accessor);
  }

  /**
   * The conversation, if the principal may `read` (or `write`) it. Not visible → 404 (no hint it
   * exists); visible but read-only → 403; an API key without the scope → 403.
   */
  async require(principal: Principal, conversationId: string, need: "read" | "write"): Promise<{ conversation: ConversationRecord; role: Role }> {
    if (principal.kind === "apiKey") {
      const scope: ApiKeyScope = need === "write" ? "conversations:write" : "conversations:read";
      if (!principal.scopes.includes(scope) && !(need === "read" && principal.scopes.includes("conversations:write"))) {
        throw new ParleyError(ErrorCode.Forbidden, `this API key lacks the ${scope} scope`);
      }
    }
    // A session from an invitation link reaches its one conversation; any other does not exist for it.
    if (principal.kind === "user" && principal.conversationScope && principal.conversationScope !== conversationId) {
      throw new ParleyError(ErrorCode.NotFound, "no such conversation");
    }
    const role = await this.roleFor(accessorOf(principal), conversationId);
    const conversation = role ? await this.directory.getConversation(conversationId) : null;
    if (!role || !conversation) throw new ParleyError(ErrorCode.NotFound, "no such conversation");
    if (need === "write" && role !== "writer") throw new ParleyError(ErrorCode.ReadOnly, "you may read this conversation but not change it");
    return { conversation, role };
  }

  /** Like {@link require} for write, and only for the organisation that started the conversation. */
  async requireOwner(principal: Principal, conversationId: string): Promise<ConversationRecord> {
    const { conversation } = await this.require(principal, conversationId, "write");
    if (conversation.orgId !== principal.orgId) {
      throw new ParleyError(ErrorCode.InsufficientRole, "only the organisation that started the conversation may do this");
    }
    return conversation;
  }
}
