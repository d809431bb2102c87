// Verifies an audit chain against the signed checkpoints: first the checkpoints themselves
// (signatures, and each one's link to the one before), then the chain walked from seq 1 with
// every head the checkpoints pin as a trusted position. An edit, removal, insertion or reorder
// breaks the links; a chain recomputed after an edit no longer matches a pinned head.

import type { KeyObject } from "node:crypto";
import type { ChainHead, ChainVerification } from "../store/audit-chain.ts";
import { verifyConversation, walkChain } from "./verify-conversation.ts";
import type { Store } from "../store/store.ts";
import type { AuditLog } from "../directory/audit-log.ts";
import { chainRef, type ExportedCheckpoint, exportCheckpoint, pinnedHeads, verifyCheckpoints } from "./checkpoint.ts";
import { OrgChainVerifier } from "../directory/org-chain.ts";

/** The outcome for one chain: the chain's verification plus how many checkpoints were checked and pinned it. */
export type AuditVerification = ChainVerification & {
  chain: string;
  checkpoints: number;
  /** How many of the chain's heads the checkpoints pinned. */
  pinned: number;
  /** Set when the checkpoints themselves do not hold (then the chain is not trusted either). */
  checkpointFailure?: { interval: number; reason: string };
};

export interface AuditSources {
  store: Store;
  log: AuditLog;
  auditKey: Uint8Array;
  publicKey: KeyObject;
}

/** Every stored checkpoint, in order, in exported form. */
export async function loadCheckpoints(log: AuditLog): Promise<ExportedCheckpoint[]> {
  const all: ExportedCheckpoint[] = [];
  for (let after = -1; ; ) {
    const page = await log.listAuditCheckpoints(after, 1000);
    all.push(...page.map(exportCheckpoint));
    if (page.length < 1000) return all;
    after = page[page.length - 1].interval;
  }
}

/**
 * Verifies a chain (`conversation:<id>` or `org:<id>`) against checkpoints: the stored ones, or
 * `external` ones the customer kept (those are what a store-side rewrite cannot reach).
 */
export async function verifyAuditChain(sources: AuditSources, chain: string, external?: readonly ExportedCheckpoint[]): Promise<AuditVerification> {
  const checkpoints = external ?? (await loadCheckpoints(sources.log));
  const checked = verifyCheckpoints(checkpoints, sources.publicKey, { fromStart: external === undefined });
  const pins = checked.ok ? (pinnedHeads(checkpoints).get(chainRef(sources.auditKey, chain)) ?? []) : [];
  const base = { chain, checkpoints: checkpoints.length, pinned: pins.length };
  if (!checked.ok) {
    return { ok: false, seq: 0, reason: `checkpoint of interval ${checked.interval}: ${checked.reason}`, ...base, checkpointFailure: checked };
  }
  const [kind, id] = splitChain(chain);
  if (kind === "conversation") return { ...(await verifyConversation(sources.store, id, sources.auditKey, { checkpoints: pins })), ...base };
  return { ...(await verifyOrgChain(sources.log, id, pins)), ...base };
}

/** Walks an organisation's chain from seq 1 (the heads in `checkpoints` trusted positions) up to the head the log records. */
export function verifyOrgChain(log: AuditLog, org: string, checkpoints: readonly ChainHead[] = []): Promise<ChainVerification> {
  return walkChain(
    new OrgChainVerifier(org, { checkpoints }),
    (after, limit) => log.readOrgAuditEntries(org, after, limit),
    async () => (await log.orgAuditHead(org))?.seq ?? 0,
  );
}

/** `conversation:<id>` or `org:<id>` split in two; throws on anything else. */
export function splitChain(chain: string): ["conversation" | "org", string] {
  const at = chain.indexOf(":");
  const kind = chain.slice(0, at);
  if (at < 1 || (kind !== "conversation" && kind !== "org") || at === chain.length - 1) throw new TypeError(`not a chain id: ${JSON.stringify(chain)}`);
  return [kind, chain.slice(at + 1)];
}
