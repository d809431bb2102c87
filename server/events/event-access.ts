// Who may follow an organisation's events: its API keys (with a conversations scope) and its
// admins and owners. Checked when a stream starts and again while it runs, from the directory as
// it is now, so a revoked key or a demoted person stops receiving within one recheck interval.
// API keys may also authenticate a socket (server/identity/identity-module.ts) and follow events
// with the `subscribe-events` frame.

import { ErrorCode } from "../../protocol/index.ts";
import type { AccessDirectory } from "../directory/access-directory.ts";
import type { OrganisationDirectory } from "../directory/organisation-directory.ts";
import { ParleyError } from "../platform/errors.ts";
import { type AnyPrincipal, actingOrg, actorId, type Principal } from "../http/principal.ts";

/** What checking an event reader reads: its key, or its membership. */
export type EventAccessDirectory = Pick<AccessDirectory, "getApiKey"> & Pick<OrganisationDirectory, "getMembership">;

/** API key scopes that allow reading events (events show conversation content). */
export const EVENT_READ_SCOPES: readonly string[] = ["conversations:read", "conversations:write"];

/** Someone following an organisation's events. */
export type EventReader =
  | { kind: "apiKey"; keyId: string; orgId: string }
  /** `conversationScope`: a session from an invitation link, which follows no organisation's events. */
  | { kind: "user"; userId: string; orgId: string; conversationScope?: string | null };

/**
 * The reader behind a principal, the event stream's or a socket's. A token that lists its
 * conversations reads as the person its subject names, whose membership the checks then ask for.
 */
export function readerOfPrincipal(principal: AnyPrincipal): EventReader {
  switch (principal.kind) {
    case "apiKey":
      return { kind: "apiKey", keyId: principal.keyId, orgId: principal.orgId };
    case "user":
      return { kind: "user", userId: principal.userId, orgId: principal.orgId, conversationScope: principal.conversationScope };
    case "conversationToken":
    case "support":
      return { kind: "user", userId: actorId(principal), orgId: actingOrg(principal), conversationScope: principal.token.conversationScope ?? null };
  }
}

/** Throws unless a freshly resolved principal may read its organisation's events. */
export function requireEventReader(principal: Principal): void {
  if (principal.kind === "apiKey") {
    if (!principal.scopes.some((scope) => EVENT_READ_SCOPES.includes(scope))) {
      throw new ParleyError(ErrorCode.Forbidden, "this API key lacks the conversations:read scope");
    }
    return;
  }
  if (principal.role !== "admin" && principal.role !== "owner") {
    throw new ParleyError(ErrorCode.InsufficientRole, "following events needs an API key or the admin or owner role");
  }
}

/** Checks a reader against the directory as it is now. */
export class EventAccess {
  constructor(private readonly directory: EventAccessDirectory) {}

  /** Throws unless `reader` may (still) read its organisation's events. */
  async check(reader: EventReader): Promise<void> {
    if (reader.kind === "apiKey") {
      const key = await this.directory.getApiKey(reader.keyId);
      if (!key || key.revokedAt !== null || key.orgId !== reader.orgId) throw new ParleyError(ErrorCode.InvalidCredentials, "this API key was revoked");
      if (!key.scopes.some((scope) => EVENT_READ_SCOPES.includes(scope))) {
        throw new ParleyError(ErrorCode.Forbidden, "this API key lacks the conversations:read scope");
      }
      return;
    }
    const role = reader.conversationScope ? null : await this.directory.getMembership(reader.orgId, reader.userId);
    if (role !== "admin" && role !== "owner") {
      throw new ParleyError(ErrorCode.InsufficientRole, "following events needs an API key or the admin or owner role");
    }
  }
}
