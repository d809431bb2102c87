// Builds an organisation's audit export (JSON lines, see audit-export.ts): the header, the public
// checkpoint key, every entry of the organisation's chain in order, and every signed checkpoint.
// One builder for GET /v1/organisations/:org/audit/export and `parley audit export --org`.

import type { JsonWebKey } from "node:crypto";
import { EXPORT_FORMAT, type ExportLine, orgEntryLine } from "./audit-export.ts";
import type { AuditLog } from "../directory/audit-log.ts";
import { chainRef } from "./checkpoint.ts";
import { loadCheckpoints } from "./verify-audit.ts";

const PAGE = 1000;

/** The export lines of `org`'s chain as it stands now. */
export async function orgExportLines(deps: { log: AuditLog; auditKey: Uint8Array; jwk: JsonWebKey & { kid: string }; now: number }, org: string): Promise<ExportLine[]> {
  const chain = `org:${org}`;
  const lines: ExportLine[] = [
    { type: "export", format: EXPORT_FORMAT, chain, chainRef: chainRef(deps.auditKey, chain), exportedAt: deps.now },
    { type: "key", key: deps.jwk },
  ];
  for (let after = 0; ; ) {
    const page = await deps.log.readOrgAuditEntries(org, after, PAGE);
    for (const e of page) lines.push(orgEntryLine(e));
    if (page.length < PAGE) break;
    after = page[page.length - 1].seq;
  }
  for (const c of await loadCheckpoints(deps.log)) lines.push({ type: "checkpoint", ...c });
  return lines;
}
