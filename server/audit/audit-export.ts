// The audit export format, JSON lines, both directions: what GET .../audit/export (a
// conversation's or an organisation's chain) and GET /v1/audit/checkpoints write, and what
// `parley audit verify --file/--checkpoints` reads back. An export carries the chain's entries
// (attribution, content HMAC or org event, hashes; never content), the signed checkpoints and the
// public key, so a customer can verify it without Parley.

import type { JsonWebKey } from "node:crypto";
import { type ChainVerification, ChainVerifier, toHex } from "../store/audit-chain.ts";
import type { AuditEntry, LogEntry } from "../store/store.ts";
import { type ExportedCheckpoint, pinnedHeads, verifyCheckpoints } from "./checkpoint.ts";
import { checkpointPublicKey } from "./checkpoint-key.ts";
import { type OrgAuditEntry, OrgChainVerifier } from "../directory/org-chain.ts";

export const EXPORT_FORMAT = "parley/audit-export/v1";

/** One line of an export. */
export type ExportLine =
  | { type: "export"; format: typeof EXPORT_FORMAT; chain: string; /** How checkpoints name this chain (chainRef). */ chainRef: string; exportedAt: number }
  | { type: "key"; key: JsonWebKey & { kid: string } }
  | ({ type: "checkpoint" } & ExportedCheckpoint)
  | ({ type: "entry" } & Omit<AuditEntry, "contentHmac" | "prevHash" | "hash"> & { contentHmac: string; prevHash: string; hash: string })
  | ({ type: "org-entry" } & Omit<OrgAuditEntry, "prevHash" | "hash"> & { prevHash: string; hash: string });

/** A conversation entry as an export line (no payload). */
export function entryLine(e: AuditEntry): ExportLine {
  return {
    type: "entry",
    conversation: e.conversation,
    seq: e.seq,
    at: e.at,
    user: e.user,
    org: e.org,
    session: e.session,
    kind: e.kind,
    size: e.size,
    contentHmac: toHex(e.contentHmac),
    prevHash: toHex(e.prevHash),
    hash: toHex(e.hash),
  };
}

/** An organisation's entry as an export line. */
export function orgEntryLine(e: OrgAuditEntry): ExportLine {
  return {
    type: "org-entry",
    org: e.org,
    seq: e.seq,
    at: e.at,
    action: e.action,
    actor: e.actor,
    target: e.target,
    details: e.details,
    prevHash: toHex(e.prevHash),
    hash: toHex(e.hash),
  };
}

export function toJsonLines(lines: Iterable<ExportLine>): string {
  let out = "";
  for (const line of lines) out += `${JSON.stringify(line)}\n`;
  return out;
}

/** Parses JSON lines; throws naming the first line that is not JSON or has no known type. */
export function parseJsonLines(text: string): ExportLine[] {
  const lines: ExportLine[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new SyntaxError(`line ${i + 1} is not JSON`);
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (type !== "export" && type !== "key" && type !== "checkpoint" && type !== "entry" && type !== "org-entry") throw new SyntaxError(`line ${i + 1} has no known type`);
    lines.push(value as ExportLine);
  });
  return lines;
}

/** The checkpoints of parsed lines, in file order. */
export function checkpointsOf(lines: readonly ExportLine[]): ExportedCheckpoint[] {
  return lines.filter((l): l is Extract<ExportLine, { type: "checkpoint" }> => l.type === "checkpoint").map(({ body, hash, signature }) => ({ body, hash, signature }));
}

const hex = (s: string) => new Uint8Array(Buffer.from(typeof s === "string" ? s : "", "hex"));

/** The `details` of an org entry line as the chain hashes them: a plain object, or nothing valid. */
function detailsOf(value: unknown): OrgAuditEntry["details"] {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as OrgAuditEntry["details"]) : { "": Number.NaN };
}

/**
 * Verifies an export offline (a conversation's or an organisation's): the checkpoints
 * (signatures under the exported key, or `trustedKey` when given, and their links), then the
 * entries' chain against every head the checkpoints pin. Content HMACs need the audit key and
 * are not checked here.
 */
export function verifyExport(lines: readonly ExportLine[], trustedKey?: JsonWebKey): ChainVerification & { chain: string; checkpoints: number; pinned: number } {
  const header = lines.find((l) => l.type === "export");
  const keyLine = lines.find((l) => l.type === "key");
  const chain = header?.type === "export" && typeof header.chain === "string" ? header.chain : "";
  const checkpoints = checkpointsOf(lines);
  const fail = (reason: string) => ({ ok: false as const, seq: 0, reason, chain, checkpoints: checkpoints.length, pinned: 0 });
  const kind = chain.startsWith("conversation:") ? "conversation" : chain.startsWith("org:") ? "org" : null;
  if (header?.type !== "export" || header.format !== EXPORT_FORMAT || kind === null || !/^[0-9a-f]{32}$/.test(String(header.chainRef))) {
    return fail("not a conversation or organisation audit export");
  }
  const jwk = trustedKey ?? (keyLine?.type === "key" ? keyLine.key : undefined);
  if (!jwk) return fail("the export carries no public key");
  const checked = verifyCheckpoints(checkpoints, checkpointPublicKey(jwk), { fromStart: true });
  if (!checked.ok) return fail(`checkpoint of interval ${checked.interval}: ${checked.reason}`);
  const id = chain.slice(kind.length + 1);
  const pins = pinnedHeads(checkpoints).get(header.chainRef) ?? [];
  const base = { chain, checkpoints: checkpoints.length, pinned: pins.length };
  if (kind === "org") {
    const verifier = new OrgChainVerifier(id, { checkpoints: pins });
    for (const line of lines) {
      if (line.type === "entry") {
        verifier.fail(verifier.head.seq + 1, "a conversation entry in an organisation export");
        break;
      }
      if (line.type !== "org-entry") continue;
      const entry: OrgAuditEntry = { ...line, details: detailsOf(line.details), prevHash: hex(line.prevHash), hash: hex(line.hash) };
      let pushed = false;
      try {
        pushed = verifier.push(entry);
      } catch {
        verifier.fail(verifier.head.seq + 1, "malformed entry");
      }
      if (!pushed) break;
    }
    return { ...verifier.result(), ...base };
  }
  // No payloads in an export, so no audit key is needed: a zero key stands in.
  const verifier = new ChainVerifier(id, new Uint8Array(32), { checkpoints: pins, payloads: false });
  for (const line of lines) {
    if (line.type !== "entry") continue;
    const entry: LogEntry = { ...line, contentHmac: hex(line.contentHmac), prevHash: hex(line.prevHash), hash: hex(line.hash), payload: null };
    if (!verifier.push(entry)) break;
  }
  return { ...verifier.result(), ...base };
}
