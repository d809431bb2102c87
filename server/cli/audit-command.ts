// `parley audit verify`: checks audit chains against the signed checkpoints and names the first
// broken entry. Against the installation's databases (one conversation, one organisation, or every
// chain; optionally with checkpoints the customer kept, exported from GET /v1/audit/checkpoints),
// or offline against an export file (GET /v1/conversations/:id/audit/export or
// /v1/organisations/:org/audit/export). Exit 0: all hold; 1: something is broken; 2: bad usage.
// With the embedded store, verify also compares each log with the heads the server pinned as
// acknowledged (store/acknowledged-heads.ts): a log behind its pin lost acknowledged writes.
// `parley audit export --org ID` writes an organisation's export from the installation's databases.

import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ConfigError } from "../platform/config.ts";
import { ACKED_HEADS_FILE, findLostWrites, type LostWrites } from "../store/acknowledged-heads.ts";
import { checkpointsOf, type ExportLine, parseJsonLines, toJsonLines, verifyExport } from "../audit/audit-export.ts";
import type { ExportedCheckpoint } from "../audit/checkpoint.ts";
import { orgExportLines } from "../audit/org-export.ts";
import { type AuditVerification, verifyAuditChain } from "../audit/verify-audit.ts";
import { withCliContext } from "./cli-context.ts";

export const AUDIT_USAGE = `  parley audit verify [--conversation ID | --org ID | --all] [--checkpoints FILE] [--data-dir DIR]
                                    verify audit chains against the signed checkpoints (the stored
                                    ones, or those kept in FILE from GET /v1/audit/checkpoints)
  parley audit verify --file EXPORT  verify a conversation or organisation export (GET .../audit/export) offline
  parley audit export --org ID [--out FILE] [--data-dir DIR]
                                    write the organisation's audit chain with its verification
                                    material (JSON lines) to FILE or standard output`;

/** One chain's outcome as a line for the operator. */
function describe(r: { chain: string; ok: boolean; checkpoints: number; pinned: number } & ({ ok: true; entries: number } | { ok: false; seq: number; reason: string })): string {
  if (r.ok) return `ok      ${r.chain}: ${r.entries} entries, ${r.pinned} head(s) pinned by ${r.checkpoints} checkpoint(s)`;
  return `BROKEN  ${r.chain}: first broken entry seq ${r.seq}: ${r.reason}`;
}

async function readLines(file: string): Promise<ExportLine[]> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read ${file}: ${error.code ?? error.message}`);
  });
  try {
    return parseJsonLines(text);
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as Error).message}`);
  }
}

/** What the command needs from outside the audit layer (the CLI wires it). */
export interface AuditCommandDeps {
  /** Conversations destroyed on purpose (the deletion ledger): their pins are no loss. */
  destroyedConversations: (dataDir: string) => Promise<string[]>;
}

function describeLoss(loss: LostWrites): string {
  return `BEHIND  conversation:${loss.conversation}: entries ${loss.from}-${loss.through} were acknowledged (${ACKED_HEADS_FILE}) and are missing from the log`;
}

/** Runs `parley audit <args>`; resolves with the exit code. */
export async function auditCommand(args: string[], deps: AuditCommandDeps): Promise<number> {
  const [action, ...rest] = args;
  if (action === "export") return exportCommand(rest);
  if (action !== "verify") throw new ConfigError(`usage:\n${AUDIT_USAGE}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      conversation: { type: "string" },
      org: { type: "string" },
      all: { type: "boolean", default: false },
      checkpoints: { type: "string" },
      file: { type: "string" },
      "data-dir": { type: "string" },
    },
    strict: true,
  });
  if (values.file) {
    const result = verifyExport(await readLines(values.file));
    process.stdout.write(`${describe(result)}\n`);
    return result.ok ? 0 : 1;
  }
  const targets = [values.conversation, values.org, values.all || undefined].filter((v) => v !== undefined);
  if (targets.length !== 1) throw new ConfigError("audit verify needs one of --conversation ID, --org ID, --all or --file EXPORT");

  return withCliContext({ dataDir: values["data-dir"] }, async (parts) => {
    const { config } = parts;
    const external: ExportedCheckpoint[] | undefined = values.checkpoints ? checkpointsOf(await readLines(values.checkpoints)) : undefined;
    // The store first: it refuses a data directory that is not there, or has no master key,
    // before the key files are read (and, if absent, made).
    const store = await parts.store();
    const { log } = await parts.auditLog();
    const keys = await parts.keys();
    const checkpointKey = await parts.checkpointKey();
    let chains: string[];
    if (values.conversation) chains = [`conversation:${values.conversation}`];
    else if (values.org) chains = [`org:${values.org}`];
    else {
      const [conversations, orgs] = await Promise.all([store.listChainHeads(0), log.listOrgAuditHeads(0)]);
      chains = [...conversations.map((h) => `conversation:${h.conversation}`), ...orgs.map((h) => h.chain)];
    }
    const sources = { store, log, auditKey: keys.auditKey, publicKey: checkpointKey.publicKey };
    let broken = 0;
    for (const chain of chains) {
      const result: AuditVerification = await verifyAuditChain(sources, chain, external);
      if (!result.ok) broken++;
      process.stdout.write(`${describe(result)}\n`);
    }
    // The embedded store's pins (Postgres keeps none): a conversation whose log is behind what
    // was acknowledged is broken too, even when what is left of its chain holds.
    let behind = 0;
    if (!values.org && !config.store.databaseUrl) {
      const lost = await findLostWrites(config.dataDir, store, await deps.destroyedConversations(config.dataDir));
      for (const loss of lost) {
        if (values.conversation !== undefined && loss.conversation !== values.conversation) continue;
        behind++;
        process.stdout.write(`${describeLoss(loss)}\n`);
      }
    }
    process.stdout.write(`${chains.length} chain(s) checked, ${broken} broken${behind > 0 ? `, ${behind} behind the acknowledged heads` : ""}\n`);
    return broken === 0 && behind === 0 ? 0 : 1;
  });
}

/** `parley audit export --org ID [--out FILE]`: the organisation's export, read from the databases. */
async function exportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { org: { type: "string" }, out: { type: "string" }, "data-dir": { type: "string" } }, strict: true });
  const org = values.org;
  if (!org) throw new ConfigError("audit export needs --org ID");
  return withCliContext({ dataDir: values["data-dir"] }, async (parts) => {
    const { log } = await parts.auditLog();
    const keys = await parts.keys();
    const checkpointKey = await parts.checkpointKey();
    if (!(await log.orgAuditHead(org))) throw new ConfigError(`no audit chain for organisation ${org}`);
    const lines = await orgExportLines({ log, auditKey: keys.auditKey, jwk: checkpointKey.jwk, now: parts.now() }, org);
    const text = toJsonLines(lines);
    if (values.out) await writeFile(values.out, text, { mode: 0o600 });
    else process.stdout.write(text);
    const entries = lines.filter((l) => l.type === "org-entry").length;
    if (values.out) process.stderr.write(`wrote ${entries} entries of org:${org} to ${values.out}\n`);
    return 0;
  });
}
