// Master key rotation: a new <keysDir>/master.key, every data key re-wrapped under it (the data
// itself is never rewritten), and the old key kept as master-<id>.key until no data key is
// wrapped by it any more, then retired: moved to <keysDir>/retired-master-keys/, out of the
// store's keyring but kept for the backups encrypted under it. A running server keeps working
// throughout: its keyring accepts every id it finds in the key files, and it notices the new
// master.key within about a second (see envelope.ts DataKeyring), then wraps new data keys with it.

import { randomBytes } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { readOrCreate, writePrivateTemp } from "../crypto/keys.ts";
import { MASTER_KEY_BYTES, MASTER_KEY_FILE, type MasterKey, masterKey, RETIRED_DIR, readKeyring, retiredKeyFile } from "../crypto/master-key.ts";
import { rewrapSecretsKey } from "../crypto/secrets-key.ts";
import { unwrapDataKey, wrapDataKey } from "./envelope.ts";
import { DATA_KEY, type DataKeyRow } from "./keyring.ts";
import { numberedPlaceholders } from "../sql/sql-dialect.ts";

/** The wrapped data keys, wherever they live (the keyring file, or Postgres). */
export interface KeyringTable {
  masterIds(): Promise<string[]>;
  /** A page of data keys not wrapped by `masterId`. */
  notWrappedBy(masterId: string, limit: number): Promise<DataKeyRow[]>;
  /** Replaces one wrapped key, only if it is still wrapped by `fromId` (false otherwise). */
  rewrap(conversation: string, fromId: string, toId: string, wrapped: Uint8Array): Promise<boolean>;
  close(): Promise<void>;
}

export function sqliteKeyringTable(file: string): KeyringTable {
  const db = new Database(file, { fileMustExist: true });
  db.pragma("busy_timeout = 5000");
  db.pragma("synchronous = FULL");
  return {
    masterIds: async () => db.prepare<[], string>(DATA_KEY.masterIds).pluck().all(),
    notWrappedBy: async (id, limit) => db.prepare<[string, number], DataKeyRow>(DATA_KEY.selectNotWrappedBy).all(id, limit),
    rewrap: async (conversation, fromId, toId, wrapped) =>
      db.prepare(DATA_KEY.rewrap).run(wrapped, toId, conversation, fromId).changes === 1,
    close: async () => {
      db.close();
    },
  };
}

export async function postgresKeyringTable(connectionString: string, schema?: string): Promise<KeyringTable> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  if (schema) await client.query(`SET search_path TO "${schema}"`);
  return {
    masterIds: async () => (await client.query<{ master_key_id: string }>(DATA_KEY.masterIds)).rows.map((r) => r.master_key_id),
    notWrappedBy: async (id, limit) => (await client.query<DataKeyRow>(numberedPlaceholders(DATA_KEY.selectNotWrappedBy), [id, limit])).rows,
    rewrap: async (conversation, fromId, toId, wrapped) =>
      ((await client.query(numberedPlaceholders(DATA_KEY.rewrap), [wrapped, toId, conversation, fromId])).rowCount ?? 0) === 1,
    close: () => client.end(),
  };
}

export interface RotationResult {
  previousId: string;
  newId: string;
  rewrapped: number;
  /** Ids of the old master keys moved out of the keyring to RETIRED_DIR (no data key uses them any more). */
  retired: string[];
}

export interface RotationOptions {
  /**
   * How long to wait before the final pass, so a running server that wrapped a new data key with
   * the old master key just before noticing the new one is caught. Default 2500 ms (servers look
   * at master.key about once a second).
   */
  settleMs?: number;
}

const PAGE = 500;

/** Rotates the master key in `keysDir` and re-wraps every data key in `table`. */
export async function rotateMasterKey(keysDir: string, table: KeyringTable, options: RotationOptions = {}): Promise<RotationResult> {
  const ring = readKeyring(keysDir);
  const previous = ring.keys[0];
  // Keep the old key under its id first: from here on a crash at any point leaves every data key
  // unwrappable by some key file, and running again finishes the job.
  await readOrCreate(retiredKeyFile(keysDir, previous.id), () => Buffer.from(previous.key));
  const next = masterKey(randomBytes(MASTER_KEY_BYTES));
  await replaceFile(path.join(keysDir, MASTER_KEY_FILE), next.key);
  const byId = new Map<string, MasterKey>(ring.keys.map((k) => [k.id, k]));
  let rewrapped = await rewrapAll(table, byId, next);
  await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 2500));
  rewrapped += await rewrapAll(table, byId, next);
  // Before any old key is retired: the secrets key must never be left wrapped by a retired key.
  await rewrapSecretsKey(keysDir, ring.keys, next);
  const inUse = new Set(await table.masterIds());
  const retired: string[] = [];
  for (const key of ring.keys) {
    if (inUse.has(key.id)) continue;
    // Out of the store's keyring; kept aside for the backups made with it (their files are encrypted under it).
    await mkdir(path.join(keysDir, RETIRED_DIR), { recursive: true, mode: 0o700 });
    await rename(retiredKeyFile(keysDir, key.id), path.join(keysDir, RETIRED_DIR, path.basename(retiredKeyFile(keysDir, key.id)))).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      },
    );
    retired.push(key.id);
  }
  return { previousId: previous.id, newId: next.id, rewrapped, retired };
}

async function rewrapAll(table: KeyringTable, byId: ReadonlyMap<string, MasterKey>, next: MasterKey): Promise<number> {
  let count = 0;
  for (;;) {
    const rows = await table.notWrappedBy(next.id, PAGE);
    if (rows.length === 0) return count;
    for (const row of rows) {
      const old = byId.get(row.master_key_id);
      if (!old) throw new Error(`data key of ${JSON.stringify(row.conversation_id)} is wrapped by master key ${row.master_key_id}, which is not in the keys directory`);
      const raw = unwrapDataKey(old, row.conversation_id, { masterKeyId: old.id, wrapped: row.wrapped });
      const { wrapped } = wrapDataKey(next, row.conversation_id, raw);
      // A key destroyed or re-wrapped meanwhile is simply skipped (the next page will not list it).
      if (await table.rewrap(row.conversation_id, old.id, next.id, wrapped)) count++;
    }
  }
}

/** Writes a private temp file, syncs it, and renames it over `file`: readers see the old or the new key, never half of one. */
async function replaceFile(file: string, content: Uint8Array): Promise<void> {
  await rename(await writePrivateTemp(file, content), file);
}
