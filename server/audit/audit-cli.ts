// `parley audit verify`: checks audit chains against the signed checkpoints and names the first
// broken entry. Against the installation's databases (one conversation, one organisation, or every
// chain; optionally with checkpoints the customer kept, exported from GET /v1/audit/checkpoints),
// or offline against an export file (GET /v1/conversations/:id/audit/export). Exit 0: all hold;
// 1: something is broken; 2: bad usage.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadOrCreateKeys } from "../auth/keys.ts";
import { configuredMasterKeys } from "../backup/backup-keys.ts";
import { ConfigError, loadConfig } from "../config.ts";
import { openPostgresStore } from "../store/postgres/postgres-store.ts";
import { openSqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import { checkpointsOf, type ExportLine, parseJsonLines, verifyExport } from "./audit-export.ts";
import { openAuditLog } from "./audit-log.ts";
import type { ExportedCheckpoint } from "./checkpoint.ts";
import { loadOrCreateCheckpointKey } from "./checkpoint-key.ts";
import { type AuditVerification, verifyAuditChain } from "./verify-audit.ts";

export const AUDIT_USAGE = `  parley audit verify [--conversation ID | --org ID | --all] [--checkpoints FILE] [--data-dir DIR]
                                    verify audit chains against the signed checkpoints (the stored
                                    ones, or those kept in FILE from GET /v1/audit/checkpoints)
  parley audit verify --file EXPORT  verify a conversation export (GET .../audit/export) offline`;

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

/** Runs `parley audit <args>`; resolves with the exit code. */
export async function auditCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
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

  const env = values["data-dir"] ? { ...process.env, PARLEY_DATA_DIR: values["data-dir"] } : process.env;
  const config = loadConfig(env);
  const external: ExportedCheckpoint[] | undefined = values.checkpoints ? checkpointsOf(await readLines(values.checkpoints)) : undefined;
  const keys = await loadOrCreateKeys(config.keysDir);
  const checkpointKey = await loadOrCreateCheckpointKey(config.keysDir);
  const masterKeys = await configuredMasterKeys(config);
  const store: Store = config.store.databaseUrl
    ? await openPostgresStore({ connectionString: config.store.databaseUrl, auditKey: keys.auditKey, masterKeys })
    : await openSqliteStore({ path: path.join(config.dataDir, "parley.db"), auditKey: keys.auditKey, masterKeys });
  try {
    const audit = await openAuditLog({ dataDir: config.dataDir, databaseUrl: config.store.databaseUrl });
    try {
      let chains: string[];
      if (values.conversation) chains = [`conversation:${values.conversation}`];
      else if (values.org) chains = [`org:${values.org}`];
      else {
        const [conversations, orgs] = await Promise.all([store.listChainHeads(0), audit.log.listOrgAuditHeads(0)]);
        chains = [...conversations.map((h) => `conversation:${h.conversation}`), ...orgs.map((h) => h.chain)];
      }
      const sources = { store, log: audit.log, auditKey: keys.auditKey, publicKey: checkpointKey.publicKey };
      let broken = 0;
      for (const chain of chains) {
        const result: AuditVerification = await verifyAuditChain(sources, chain, external);
        if (!result.ok) broken++;
        process.stdout.write(`${describe(result)}\n`);
      }
      process.stdout.write(`${chains.length} chain(s) checked, ${broken} broken\n`);
      return broken === 0 ? 0 : 1;
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
}
