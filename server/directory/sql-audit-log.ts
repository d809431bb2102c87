// The audit tables' logic, written once over the directory's SqlRunner (SQLite in the directory's
// worker, Postgres on the event loop): appending to an organisation's chain with its next sequence
// number under a row lock, reading it back, listing changed heads, and storing checkpoints.

import type { SqlRow, SqlRunner } from "../sql/sql-runner.ts";
import type { ChainHead } from "../store/audit-chain.ts";
import { type OrgAuditEntry, type OrgAuditEvent, orgEntryHash, orgGenesisHash } from "./org-chain.ts";

/** A chain head as checkpoints record it: which chain, how far, and the hash there. */
export interface ChainHeadRecord extends ChainHead {
  /** `conversation:<id>` or `org:<id>`. */
  chain: string;
}

/** A signed checkpoint as stored: its canonical body (JSON), the body's hash and the signature. */
export interface StoredCheckpoint {
  interval: number;
  body: string;
  hash: Uint8Array;
  signature: Uint8Array;
}

function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? new Uint8Array(value) : new Uint8Array(0);
}

function entryFrom(row: SqlRow): OrgAuditEntry {
  return {
    org: String(row.org_id),
    seq: Number(row.seq),
    at: Number(row.at),
    action: String(row.action) as OrgAuditEntry["action"],
    actor: String(row.actor),
    target: String(row.target),
    details: JSON.parse(String(row.details)) as OrgAuditEntry["details"],
    prevHash: bytes(row.prev_hash),
    hash: bytes(row.hash),
  };
}

function checkpointFrom(row: SqlRow): StoredCheckpoint {
  return { interval: Number(row.interval_no), body: String(row.body), hash: bytes(row.hash), signature: bytes(row.signature) };
}

/** The audit operations of the directory; see the Directory interface for what each promises. */
export class SqlAuditLog {
  constructor(private readonly db: SqlRunner) {}

  appendOrgAuditEvent(org: string, event: OrgAuditEvent, now: number): Promise<OrgAuditEntry> {
    const lock = this.db.dialect.lockRows;
    return this.db.transaction(async (tx) => {
      // The head row exists before it is locked: a first event of an organisation racing another
      // waits on the insert, then both take turns on the lock.
      await tx.run("INSERT INTO org_audit_heads (org_id, head_seq, head_hash, head_at) VALUES (?, 0, ?, 0) ON CONFLICT (org_id) DO NOTHING", [
        org,
        orgGenesisHash(org),
      ]);
      const head = await tx.get(`SELECT head_seq, head_hash, head_at FROM org_audit_heads WHERE org_id = ?${lock}`, [org]);
      if (!head) throw new Error("org audit head vanished inside its transaction");
      const prevHash = bytes(head.head_hash);
      const fields = { org, seq: Number(head.head_seq) + 1, at: Math.max(now, Number(head.head_at)), ...event };
      const hash = orgEntryHash(prevHash, fields);
      await tx.run(
        "INSERT INTO org_audit_entries (org_id, seq, at, action, actor, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [org, fields.seq, fields.at, event.action, event.actor, event.target, JSON.stringify(event.details), prevHash, hash],
      );
      await tx.run("UPDATE org_audit_heads SET head_seq = ?, head_hash = ?, head_at = ? WHERE org_id = ?", [fields.seq, hash, fields.at, org]);
      return { ...fields, prevHash, hash };
    });
  }

  async readOrgAuditEntries(org: string, afterSeq: number, limit: number): Promise<OrgAuditEntry[]> {
    const rows = await this.db.all("SELECT * FROM org_audit_entries WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?", [org, afterSeq, limit]);
    return rows.map(entryFrom);
  }

  async orgAuditHead(org: string): Promise<ChainHeadRecord | null> {
    const row = await this.db.get("SELECT org_id, head_seq, head_hash FROM org_audit_heads WHERE org_id = ?", [org]);
    return row ? { chain: `org:${org}`, seq: Number(row.head_seq), hash: bytes(row.head_hash) } : null;
  }

  /** Org chain heads whose last entry is at or after `sinceMs`, by organisation id. */
  async listOrgAuditHeads(sinceMs: number): Promise<ChainHeadRecord[]> {
    const rows = await this.db.all("SELECT org_id, head_seq, head_hash FROM org_audit_heads WHERE head_at >= ? AND head_seq > 0 ORDER BY org_id", [sinceMs]);
    return rows.map((row) => ({ chain: `org:${String(row.org_id)}`, seq: Number(row.head_seq), hash: bytes(row.head_hash) }));
  }

  /**
   * Stores a checkpoint if the last one stored is still `previousInterval` (null: none yet), so
   * it links to its real predecessor; true when this call stored it, false when another node got
   * there first (compare-and-set on a locked one-row table).
   */
  insertAuditCheckpoint(checkpoint: StoredCheckpoint, previousInterval: number | null): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run("INSERT INTO audit_checkpoint_head (id, interval_no) VALUES (1, -1) ON CONFLICT (id) DO NOTHING");
      const head = await tx.get(`SELECT interval_no FROM audit_checkpoint_head WHERE id = 1${this.db.dialect.lockRows}`);
      if (Number(head?.interval_no) !== (previousInterval ?? -1)) return false;
      await tx.run("INSERT INTO audit_checkpoints (interval_no, body, hash, signature) VALUES (?, ?, ?, ?)", [
        checkpoint.interval,
        checkpoint.body,
        checkpoint.hash,
        checkpoint.signature,
      ]);
      await tx.run("UPDATE audit_checkpoint_head SET interval_no = ? WHERE id = 1", [checkpoint.interval]);
      return true;
    });
  }

  async listAuditCheckpoints(afterInterval: number, limit: number): Promise<StoredCheckpoint[]> {
    const rows = await this.db.all("SELECT * FROM audit_checkpoints WHERE interval_no > ? ORDER BY interval_no LIMIT ?", [afterInterval, limit]);
    return rows.map(checkpointFrom);
  }

  async lastAuditCheckpoint(): Promise<StoredCheckpoint | null> {
    const row = await this.db.get("SELECT * FROM audit_checkpoints ORDER BY interval_no DESC LIMIT 1");
    return row ? checkpointFrom(row) : null;
  }
}
