// The audit trail over HTTP: the signed checkpoints (for customers to keep outside Parley), a
// conversation's chain verified against them (its participants) or exported as JSON lines with
// its verification material, and an organisation's own chain verified or exported (its admins). Every
// export is itself recorded in the exporting organisation's chain.

import { z } from "zod";
import { route } from "../http/route.ts";
import { requireAdmin } from "../http/principal.ts";
import type { HttpServices } from "../identity/http-services.ts";
import { auditFailureNotice } from "../notices/notice-policy.ts";
import type { Store } from "../store/store.ts";
import { EXPORT_FORMAT, type ExportLine, entryLine, toJsonLines } from "./audit-export.ts";
import type { Audit } from "./audit-module.ts";
import { chainRef } from "./checkpoint.ts";
import { ORG_AUDIT_ACTIONS } from "../directory/org-chain.ts";
import { orgExportLines } from "./org-export.ts";
import { auditActor } from "../directory/org-recorder.ts";
import { loadCheckpoints, verifyAuditChain } from "./verify-audit.ts";
import { AuditVerificationView, ItemsOf } from "../http/response-schemas.ts";

const JSON_LINES = "application/x-ndjson; charset=utf-8";

/** What the audit routes use beside the store and the audit trail: access checks, the audit key, the org audit recorder, notices. No directory. */
export type AuditRouteServices = Pick<HttpServices, "access" | "keys" | "orgAudit" | "notices" | "now">;

/** The audit routes. */
export function auditRoutes(deps: { services: AuditRouteServices; store: Store; audit: Audit }) {
  const { services, store, audit } = deps;
  const sources = { store, log: audit.log, auditKey: services.keys.auditKey, publicKey: audit.checkpointKey.publicKey };
  const keyLine = (): ExportLine => ({ type: "key", key: audit.checkpointKey.jwk });
  return [
    route({
      method: "get",
      path: "/v1/audit/checkpoints",
      auth: "principal",
      summary: "Every signed audit checkpoint as JSON lines, after the public key (JWK) that verifies them. Keep them outside Parley.",
      tags: ["audit"],
      response: { status: 200, description: "JSON lines: one `key` line, then `checkpoint` lines in interval order.", contentType: JSON_LINES },
      async handler() {
        const checkpoints = await loadCheckpoints(audit.log);
        const lines: ExportLine[] = [keyLine(), ...checkpoints.map((c) => ({ type: "checkpoint" as const, ...c }))];
        return { status: 200, raw: { contentType: JSON_LINES, body: toJsonLines(lines) } };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/audit/verify",
      auth: "principal",
      summary: "Verify the conversation's audit chain against the signed checkpoints; names the first broken entry.",
      tags: ["audit"],
      response: { status: 200, description: "`ok`, or the first broken `seq` and why.", schema: AuditVerificationView },
      async handler({ params, principal }) {
        await services.access.require(principal, params.id, "read");
        const result = await verifyAuditChain(sources, `conversation:${params.id}`);
        if (!result.ok) await services.notices?.raise(principal.orgId, auditFailureNotice(principal.orgId, result.chain, `seq ${result.seq}: ${result.reason}`, services.now()));
        return { status: 200, body: result };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/audit/verify",
      auth: "user",
      summary: "Verify the organisation's own audit chain (account and access events) against the signed checkpoints (admins).",
      tags: ["audit"],
      response: { status: 200, description: "`ok`, or the first broken `seq` and why.", schema: AuditVerificationView },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const result = await verifyAuditChain(sources, `org:${params.org}`);
        if (!result.ok) await services.notices?.raise(params.org, auditFailureNotice(params.org, result.chain, `seq ${result.seq}: ${result.reason}`, services.now()));
        return { status: 200, body: result };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/audit/entries",
      auth: "user",
      summary: "The organisation's audit chain entries, in order (admins).",
      tags: ["audit"],
      query: z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      response: {
        status: 200,
        description: "Entries.",
        schema: ItemsOf(
          z.object({
            org: z.string(),
            seq: z.number(),
            at: z.number(),
            action: z.enum(ORG_AUDIT_ACTIONS),
            actor: z.string(),
            target: z.string(),
            // Flat scalars, named by the action (e.g. `{ name }` for webauthn.registered): open by design.
            details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
            prevHash: z.string().describe("hex"),
            hash: z.string().describe("hex"),
          }),
        ),
      },
      async handler({ params, principal, query }) {
        requireAdmin(principal, params.org);
        const entries = await audit.log.readOrgAuditEntries(params.org, query.after, query.limit);
        const items = entries.map((e) => ({ ...e, prevHash: Buffer.from(e.prevHash).toString("hex"), hash: Buffer.from(e.hash).toString("hex") }));
        return { status: 200, body: { items } };
      },
    }),
    route({
      method: "get",
      path: "/v1/organisations/:org/audit/export",
      auth: "user",
      summary: "Export the organisation's audit chain as JSON lines: every entry (action, actor, target, details, hashes), the signed checkpoints and the public key (admins).",
      tags: ["audit"],
      response: { status: 200, description: "JSON lines; verify offline with `parley audit verify --file`.", contentType: JSON_LINES },
      async handler({ params, principal }) {
        requireAdmin(principal, params.org);
        const chain = `org:${params.org}`;
        // Recorded first, so the export carries its own entry: an export that cannot be audited is not handed out.
        await services.orgAudit.recordOrgEvent(params.org, { action: "audit.exported", actor: auditActor(principal), target: chain });
        const lines = await orgExportLines({ log: audit.log, auditKey: services.keys.auditKey, jwk: audit.checkpointKey.jwk, now: services.now() }, params.org);
        return { status: 200, raw: { contentType: JSON_LINES, body: toJsonLines(lines) } };
      },
    }),
    route({
      method: "get",
      path: "/v1/conversations/:id/audit/export",
      auth: "principal",
      summary: "Export the conversation's audit trail as JSON lines: every entry (attribution, content HMAC, hashes), the signed checkpoints and the public key.",
      tags: ["audit"],
      response: { status: 200, description: "JSON lines; verify offline with `parley audit verify --file`.", contentType: JSON_LINES },
      async handler({ params, principal }) {
        await services.access.require(principal, params.id, "read");
        const chain = `conversation:${params.id}`;
        // Recorded first: an export that cannot be audited is not handed out.
        await services.orgAudit.recordOrgEvent(principal.orgId, { action: "audit.exported", actor: auditActor(principal), target: chain });
        const lines: ExportLine[] = [{ type: "export", format: EXPORT_FORMAT, chain, chainRef: chainRef(services.keys.auditKey, chain), exportedAt: services.now() }, keyLine()];
        for (let after = 0; ; ) {
          const page = await store.readEntries(params.id, after, 1000);
          for (const e of page) lines.push(entryLine(e));
          if (page.length < 1000) break;
          after = page[page.length - 1].seq;
        }
        for (const c of await loadCheckpoints(audit.log)) lines.push({ type: "checkpoint", ...c });
        return { status: 200, raw: { contentType: JSON_LINES, body: toJsonLines(lines) } };
      },
    }),
  ];
}
