// The scheduled restore drill of a Postgres deployment: the newest backup pair restored, as
// `parley restore` restores it (both files verified whole, psql in one transaction, every row
// count checked before the commit), into a scratch database created for the drill and dropped
// after it, pass or fail. Then the copy is opened as a store: every table's rows counted again
// against the manifests, every conversation's document loaded and applied, every conversation's
// and organisation's audit chain verified. The deletion ledger is not replayed: the drill checks
// the backup as it was taken, and nothing reads the scratch copy but the drill.

import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Client } from "pg";
import * as Y from "yjs";
import { verifyConversation } from "../audit/verify-conversation.ts";
import { verifyOrgChain } from "../audit/verify-audit.ts";
import { openAuditLog } from "../directory/audit-log.ts";
import type { Config } from "../platform/config.ts";
import { openPostgresStore } from "../store/postgres/postgres-store.ts";
import { BackupError } from "./backup-file.ts";
import { configuredMasterKeys } from "./backup-keys.ts";
import { restorePostgresBackup } from "./postgres-backup.ts";
import { connect, quoteIdent, rowCounts, targetSchema } from "./postgres-tools.ts";

/** The tables a conversation destroyed since the backup loses rows in (or gains its tombstone). */
const CONVERSATION_TABLES = ["conversations", "entries", "snapshots", "client_ids", "destroyed_conversations"];

export interface PostgresDrillOptions {
  /** The live deployment's DATABASE_URL: the scratch database is created on the same server. */
  databaseUrl: string;
  file: string;
  keyringFile: string;
  /** Where the master keys are (the store opens the restored keyring with them). */
  config: Pick<Config, "keysDir" | "masterKey">;
  auditKey: Uint8Array;
}

/** What a passing drill found. */
export interface PostgresDrillOutcome {
  /** Rows per table in the restored copy (data and data keys). */
  counts: Record<string, number>;
  /** Conversation and organisation chains verified. */
  chainsVerified: number;
  /** Conversations whose document was loaded and applied to a Y.Doc. */
  documentsOpened: number;
}

/** Scratch databases of this deployment are named `parley_drill_<tag>_<random>`; the tag names the live database and schema. */
async function scratchPrefix(client: Client, schema: string): Promise<string> {
  const database = (await client.query<{ db: string }>("SELECT current_database() AS db")).rows[0]?.db ?? "";
  return `parley_drill_${createHash("sha256").update(`${database}\0${schema}`).digest("hex").slice(0, 10)}_`;
}

/**
 * Drops the scratch databases of this deployment's drills killed before their own cleanup. Only
 * safe while no drill of this deployment runs: the scheduler calls the drill under its advisory lock.
 */
async function dropAbandonedScratch(client: Client, prefix: string): Promise<void> {
  const found = await client.query<{ name: string }>("SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1)", [prefix]);
  for (const { name } of found.rows) await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
}

/** Restores the pair into a scratch database, checks it, and drops the database again; throws {@link BackupError} naming what failed. */
export async function drillPostgresBackup(options: PostgresDrillOptions): Promise<PostgresDrillOutcome> {
  const admin = await connect(options.databaseUrl);
  const staging = await mkdtemp(path.join(tmpdir(), "parley-pg-drill-"));
  const scratch: { name: string | null } = { name: null };
  let outcome: PostgresDrillOutcome | null = null;
  let failure: Error | null = null;
  try {
    outcome = await restoreAndCheck(admin, staging, scratch, options);
  } catch (error) {
    failure = error as Error;
  }
  await rm(staging, { recursive: true, force: true });
  const name = scratch.name;
  const dropped = name
    ? await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`).then(
        () => null,
        (error: Error) => error,
      )
    : null;
  await admin.end().catch(() => undefined);
  // A scratch copy left behind is a copy of every conversation: that must not pass quietly.
  const leftBehind = dropped ? `its scratch database ${name} could not be dropped: ${dropped.message}` : null;
  if (failure) throw leftBehind ? new BackupError(`${failure.message}; and ${leftBehind}`) : failure;
  if (leftBehind || !outcome) throw new BackupError(`the restore drill passed but ${leftBehind}`);
  return outcome;
}

/** The drill up to the drop: the scratch database created (its name left in `scratch`), restored into, counted and opened. */
async function restoreAndCheck(admin: Client, staging: string, scratch: { name: string | null }, options: PostgresDrillOptions): Promise<PostgresDrillOutcome> {
  const schema = await targetSchema(admin);
  const prefix = await scratchPrefix(admin, schema);
  await dropAbandonedScratch(admin, prefix);
  const name = `${prefix}${randomBytes(6).toString("hex")}`;
  await admin.query(`CREATE DATABASE ${quoteIdent(name)}`).catch((error: Error) => {
    throw new BackupError(`the restore drill cannot create its scratch database (the role needs CREATEDB): ${error.message}`);
  });
  scratch.name = name;
  // The live URL with another database: the same role, server and search_path (so the same schema).
  const url = new URL(options.databaseUrl);
  url.pathname = `/${name}`;
  const scratchUrl = url.toString();
  const restored = await restorePostgresBackup({
    file: options.file,
    keyringFile: options.keyringFile,
    databaseUrl: scratchUrl,
    dataDir: staging,
    masterKeys: (await configuredMasterKeys(options.config)).keys.map((k) => k.key),
    replayLedger: async () => "not replayed (a drill checks the backup as taken)",
  });
  const expected: Record<string, number> = { ...restored.manifest.rowCounts, ...restored.keyring.rowCounts };
  const counts = await countRows(scratchUrl, restored.schema);
  // Restored with a later keyring, the conversations destroyed since left their rows (checked
  // against the manifest inside the restore's transaction, before they went): the rest must match.
  const shredded = new Set(restored.destroyedSince.length > 0 ? CONVERSATION_TABLES : []);
  for (const table of new Set([...Object.keys(expected), ...Object.keys(counts)])) {
    if (shredded.has(table)) continue;
    if (counts[table] !== expected[table]) throw new BackupError(`restored table ${table} holds ${counts[table] ?? "no"} rows, the backup ${expected[table] ?? "none"}`);
  }
  return { counts, ...(await verifyRestored(scratchUrl, options)) };
}

async function countRows(databaseUrl: string, schema: string): Promise<Record<string, number>> {
  const client = await connect(databaseUrl);
  try {
    return await rowCounts(client, schema);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Opens the restored copy as a store and audit log: every document applied, every chain verified. */
async function verifyRestored(scratchUrl: string, options: PostgresDrillOptions): Promise<{ chainsVerified: number; documentsOpened: number }> {
  const store = await openPostgresStore({ connectionString: scratchUrl, auditKey: options.auditKey, masterKeys: await configuredMasterKeys(options.config) });
  let audit: Awaited<ReturnType<typeof openAuditLog>> | null = null;
  try {
    audit = await openAuditLog({ dataDir: tmpdir(), databaseUrl: scratchUrl });
    let chainsVerified = 0;
    let documentsOpened = 0;
    for (const { conversation } of await store.listChainHeads(0)) {
      const verdict = await verifyConversation(store, conversation, options.auditKey);
      if (!verdict.ok) throw new BackupError(`conversation ${conversation}'s audit chain does not verify after the restore: ${verdict.reason} (seq ${verdict.seq})`);
      chainsVerified++;
      const state = await store.loadDocument(conversation);
      const doc = new Y.Doc();
      try {
        if (state.snapshot) Y.applyUpdate(doc, state.snapshot);
        for (const update of state.updates) Y.applyUpdate(doc, update);
      } catch (error) {
        throw new BackupError(`conversation ${conversation}'s document does not open after the restore: ${(error as Error).message}`);
      } finally {
        doc.destroy();
      }
      documentsOpened++;
    }
    for (const { chain } of await audit.log.listOrgAuditHeads(0)) {
      const org = chain.slice(chain.indexOf(":") + 1);
      const verdict = await verifyOrgChain(audit.log, org);
      if (!verdict.ok) throw new BackupError(`${chain}'s audit chain does not verify after the restore: ${verdict.reason} (seq ${verdict.seq})`);
      chainsVerified++;
    }
    return { chainsVerified, documentsOpened };
  } finally {
    await audit?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
  }
}
