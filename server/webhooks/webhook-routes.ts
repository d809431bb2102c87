// Webhook endpoints over HTTP: an organisation's admins and owners register URLs (the secret is
// shown once, then kept only sealed), change or disable them, read the delivery log and the
// dead-letter list, and replay parked events. The URL is checked on registration (https, public
// addresses only) and again before every delivery, since DNS answers can change.

import { randomUUID } from "node:crypto";
import { z } from "zod";
import { ErrorCode, EVENT_TYPES } from "../../protocol/index.ts";
import { sealSecret } from "../crypto/secret-box.ts";
import { ParleyError } from "../platform/errors.ts";
import type { EventStore } from "../events/event-store.ts";
import type { Principal } from "../http/principal.ts";
import { type RouteDefinition, route } from "../http/route.ts";
import { checkUrlShape, resolveTarget, type UrlPolicy, WebhookUrlError } from "./outbound-http.ts";
import { newWebhookSecret, REPLAY_WINDOW_SECONDS } from "./signature.ts";
import { secretAssociatedData, type WebhookDispatcher } from "./webhook-dispatcher.ts";
import type { EndpointRecord, WebhookStore } from "./webhook-store.ts";
import { EventView, ItemsOf } from "../http/response-schemas.ts";

/** Endpoints one organisation may register. */
export const MAX_ENDPOINTS_PER_ORG = 20;

const EventTypes = z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length).describe("event types to deliver; empty or absent: all");
const Description = z.string().trim().max(200).refine((s) => !/\p{Cc}/u.test(s), "must not contain control characters");

/** An endpoint as the API shows it (never its secret), with its delivery state. */
const EndpointView = z.object({
  id: z.string(),
  orgId: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  eventTypes: z.array(z.enum(EVENT_TYPES)).describe("delivered types; empty: all"),
  status: z.enum(["enabled", "disabled"]),
  createdAt: z.number(),
  createdBy: z.string(),
  disabledAt: z.number().nullable(),
  disabledReason: z.string().nullable(),
  delivery: z.object({
    cursor: z.number().describe("the last event handed off (delivered or parked)"),
    headKey: z.string().nullable(),
    attempts: z.number().describe("failed attempts of the item at the head"),
    firstFailureAt: z.number().nullable(),
    nextAttemptAt: z.number().nullable(),
    failingSince: z.number().nullable(),
    lastSuccessAt: z.number().nullable(),
    lastError: z.string().nullable(),
  }),
});

/** Dependencies of the webhook routes. */
export interface WebhookRouteDeps {
  store: WebhookStore;
  events: Pick<EventStore, "head">;
  dispatcher: WebhookDispatcher;
  secretsKey: Uint8Array;
  urlPolicy: UrlPolicy;
  now: () => number;
}

function requireAdmin(principal: Principal, orgId: string): void {
  if (principal.orgId !== orgId) throw new ParleyError(ErrorCode.NotFound, "no such organisation");
  if (principal.kind !== "user" || (principal.role !== "admin" && principal.role !== "owner")) {
    throw new ParleyError(ErrorCode.InsufficientRole, "managing webhooks needs the admin or owner role");
  }
}

/** The endpoint as the API shows it: never the secret. */
function view({ secretSealed: _sealed, ...endpoint }: EndpointRecord) {
  return endpoint;
}

async function checkUrl(raw: string, policy: UrlPolicy): Promise<string> {
  try {
    const url = checkUrlShape(raw, policy);
    await resolveTarget(url, policy);
    return url.href;
  } catch (error) {
    if (error instanceof WebhookUrlError) throw new ParleyError(ErrorCode.InvalidRequest, `url: ${error.message}`);
    throw error;
  }
}

/** The webhook routes. */
export function webhookRoutes(deps: WebhookRouteDeps): RouteDefinition[] {
  const { store } = deps;

  const endpointOf = async (principal: Principal, orgId: string, id: string): Promise<EndpointRecord> => {
    requireAdmin(principal, orgId);
    const endpoint = await store.getEndpoint(id);
    if (!endpoint || endpoint.orgId !== orgId) throw new ParleyError(ErrorCode.NotFound, "no such webhook endpoint");
    return endpoint;
  };

  const seal = (id: string, secret: string) => sealSecret(deps.secretsKey, Buffer.from(secret, "utf8"), secretAssociatedData(id));

  return [
    route({
      method: "post",
      path: "/v1/organisations/:org/webhooks",
      auth: "user",
      summary: `Register a webhook endpoint (https, public address). The signing secret is shown once. Deliveries are signed: Parley-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">; reject timestamps more than ${REPLAY_WINDOW_SECONDS} s away.`,
      tags: ["webhooks"],
      sensitive: true,
      body: z.object({ url: z.string().max(2048), events: EventTypes.default([]), description: Description.optional() }),
      response: { status: 201, description: "The endpoint and its `secret` (store it now: it cannot be shown again).", schema: EndpointView.extend({ secret: z.string() }) },
      errors: [ErrorCode.InvalidRequest, ErrorCode.InsufficientRole, ErrorCode.Conflict],
      async handler({ params, principal, body }) {
        requireAdmin(principal, params.org);
        if ((await store.listEndpoints(params.org)).length >= MAX_ENDPOINTS_PER_ORG) {
          throw new ParleyError(ErrorCode.Conflict, `an organisation may register at most ${MAX_ENDPOINTS_PER_ORG} webhook endpoints`);
        }
        const url = await checkUrl(body.url, deps.urlPolicy);
        const id = `whk_${randomUUID().replaceAll("-", "")}`;
        const secret = newWebhookSecret();
        const endpoint: EndpointRecord = {
          id,
          orgId: params.org,
          url,
          description: body.description ?? null,
          eventTypes: [...new Set(body.events)],
          status: "enabled",
          createdAt: deps.now(),
          createdBy: principal.kind === "user" ? principal.userId : "",
          disabledAt: null,
          disabledReason: null,
          secretSealed: seal(id, secret),
          // Deliveries start with the next event.
          delivery: {
            cursor: await deps.events.head(params.org),
            headKey: null,
            attempts: 0,
            firstFailureAt: null,
            nextAttemptAt: null,
            failingSince: null,
            lastSuccessAt: null,
            lastError: null,
          },
        };
        await store.createEndpoint(endpoint);
        await deps.dispatcher.reload(id);
        return { status: 201, body: { ...view(endpoint), secret } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/webhooks",
      auth: "user",
      summary: "The organisation's webhook endpoints with their delivery state (never their secrets).",
      tags: ["webhooks"],
      response: { status: 200, description: "Endpoints.", schema: ItemsOf(EndpointView) },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        return { status: 200, body: { items: (await store.listEndpoints(params.org)).map(view) } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/webhooks/:id",
      auth: "user",
      summary: "One endpoint with its delivery state: cursor, failures, next attempt, last error.",
      tags: ["webhooks"],
      response: { status: 200, description: "The endpoint.", schema: EndpointView },
      async handler({ params, principal }) {
        return { status: 200, body: view(await endpointOf(principal, params.org, params.id)) };
      },
    }),
    route({
      method: "patch",
      path: "/v1/organisations/:org/webhooks/:id",
      auth: "user",
      summary: "Change the URL, event types or description; `enabled: true` re-enables a disabled endpoint (delivery resumes where it stopped).",
      tags: ["webhooks"],
      body: z.object({ url: z.string().max(2048).optional(), events: EventTypes.optional(), description: Description.nullable().optional(), enabled: z.boolean().optional() }),
      response: { status: 200, description: "The endpoint.", schema: EndpointView },
      async handler({ params, principal, body }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        const url = body.url === undefined ? undefined : await checkUrl(body.url, deps.urlPolicy);
        await store.updateEndpoint(endpoint.id, { url, eventTypes: body.events && [...new Set(body.events)], description: body.description });
        if (body.enabled !== undefined && body.enabled !== (endpoint.status === "enabled")) {
          await store.setStatus(endpoint.id, body.enabled ? "enabled" : "disabled", body.enabled ? null : "disabled from the API", deps.now());
        }
        await deps.dispatcher.reload(endpoint.id);
        const updated = await store.getEndpoint(endpoint.id);
        return { status: 200, body: updated && view(updated) };
      },
    }),
    route({
      method: "delete",
      path: "/v1/organisations/:org/webhooks/:id",
      auth: "user",
      summary: "Remove an endpoint, its delivery log and its dead letters.",
      tags: ["webhooks"],
      response: { status: 204, description: "Removed." },
      async handler({ params, principal }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        await store.deleteEndpoint(endpoint.id);
        await deps.dispatcher.reload(endpoint.id);
        return { status: 204 };
      },
    }),
    route({
      method: "post",
      path: "/v1/organisations/:org/webhooks/:id/rotate-secret",
      auth: "user",
      summary: "Replace the signing secret; the new one is shown once and signs every delivery from now on.",
      tags: ["webhooks"],
      sensitive: true,
      response: { status: 200, description: "`secret`: the new signing secret.", schema: z.object({ id: z.string(), secret: z.string() }) },
      async handler({ params, principal }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        const secret = newWebhookSecret();
        await store.updateEndpoint(endpoint.id, { secretSealed: seal(endpoint.id, secret) });
        await deps.dispatcher.reload(endpoint.id);
        return { status: 200, body: { id: endpoint.id, secret } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/webhooks/:id/attempts",
      auth: "user",
      summary: "Recent delivery attempts, newest first: status, error, duration and a short excerpt of the response.",
      tags: ["webhooks"],
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }),
      response: {
        status: 200,
        description: "Attempts, newest first.",
        schema: ItemsOf(
          z.object({
            endpointId: z.string(),
            at: z.number(),
            eventId: z.string(),
            cursor: z.number(),
            attempt: z.number().describe("1 for the first try of this item, then 2, 3, …"),
            ok: z.boolean(),
            status: z.number().nullable().describe("the receiver's HTTP status (null: no answer)"),
            error: z.string().nullable(),
            durationMs: z.number(),
            excerpt: z.string().describe("the start of the receiver's answer"),
          }),
        ),
      },
      async handler({ params, principal, query }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        return { status: 200, body: { items: await store.listAttempts(endpoint.id, query.limit) } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/webhooks/:id/dead-letters",
      auth: "user",
      summary: "Events given up on after the retry window, oldest first (kept beyond event retention, for replay).",
      tags: ["webhooks"],
      query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      response: {
        status: 200,
        description: "Dead letters.",
        schema: ItemsOf(
          z.object({
            id: z.string(),
            endpointId: z.string(),
            cursor: z.number(),
            eventId: z.string(),
            eventType: z.enum(EVENT_TYPES),
            attempts: z.number(),
            parkedAt: z.number(),
            lastError: z.string().nullable(),
            replayRequestedAt: z.number().nullable(),
            replayedAt: z.number().nullable(),
            event: EventView.describe("the event as it would have been sent"),
          }),
        ),
      },
      async handler({ params, principal, query }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        const items = (await store.listDeadLetters(endpoint.id, query.limit)).map(({ eventJson, ...letter }) => ({ ...letter, event: JSON.parse(eventJson) as unknown }));
        return { status: 200, body: { items } };
      },
    }),
    route({
      method: "post",
      path: "/v1/organisations/:org/webhooks/:id/dead-letters/replay",
      auth: "user",
      summary: "Deliver parked events again (all not yet replayed, or `ids`), before the endpoint's next new event.",
      tags: ["webhooks"],
      body: z.object({ ids: z.array(z.string().max(64)).max(1000).optional() }),
      response: { status: 200, description: "`queued`: how many dead letters will be delivered again.", schema: z.object({ queued: z.number() }) },
      async handler({ params, principal, body }) {
        const endpoint = await endpointOf(principal, params.org, params.id);
        const queued = await store.requestReplay(endpoint.id, body.ids ?? null, deps.now());
        await deps.dispatcher.reload(endpoint.id);
        return { status: 200, body: { queued } };
      },
    }),
  ];
}
