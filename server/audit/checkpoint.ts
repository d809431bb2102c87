// Signed audit checkpoints as pure functions: the body (interval, time, previous checkpoint's
// hash, and the head of every chain that changed), its canonical text, hash and Ed25519
// signature, and the check of a run of checkpoints (signatures and links). A checkpoint kept
// outside Parley pins every chain head it lists: a chain rewritten later no longer matches.

import { createHash, createHmac, type KeyObject, sign, verify } from "node:crypto";
import { toHex } from "../store/audit-chain.ts";
import type { ChainHeadRecord, StoredCheckpoint } from "../directory/sql-audit-log.ts";

export const CHECKPOINT_FORMAT = "parley/checkpoint/v1";

/** What the first checkpoint links to. */
export const CHECKPOINT_GENESIS = createHash("sha256").update(`${CHECKPOINT_FORMAT}/genesis`).digest("hex");

/** A checkpoint's signed content. */
export interface CheckpointBody {
  format: typeof CHECKPOINT_FORMAT;
  /** floor(time / interval): checkpoints are numbered by the interval they close. */
  interval: number;
  intervalSeconds: number;
  /** When it was made (ms since the epoch). */
  at: number;
  /** Hash (hex) of the previous stored checkpoint, or CHECKPOINT_GENESIS. */
  prev: string;
  /** Id of the key that signed it. */
  kid: string;
  /** [chain reference, seq, hash hex], sorted by reference (see chainRef). */
  heads: [string, number, string][];
}

/**
 * The name a chain goes by in checkpoints: a keyed hash (HMAC under the audit key) of
 * `conversation:<id>` or `org:<id>`. Every customer may read every checkpoint (they are what a
 * customer keeps outside Parley), so plain ids would tell one organisation which conversations
 * and organisations exist and when they change. An export names its chain's reference, so the
 * customer finds its own heads without the key; nobody can turn a reference back into an id.
 */
export function chainRef(auditKey: Uint8Array | KeyObject, chain: string): string {
  return createHmac("sha256", auditKey).update(`parley/chain-ref/v1\0${chain}`, "utf8").digest("hex").slice(0, 32);
}

/** A checkpoint as exported: the body, its hash and signature (hex). */
export interface ExportedCheckpoint {
  body: CheckpointBody;
  hash: string;
  signature: string;
}

/** Canonical text of a body: fixed key order, heads sorted, so every node signs the same bytes. */
export function checkpointText(body: CheckpointBody): string {
  const heads = [...body.heads].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify({
    format: body.format,
    interval: body.interval,
    intervalSeconds: body.intervalSeconds,
    at: body.at,
    prev: body.prev,
    kid: body.kid,
    heads,
  });
}

/** Builds, hashes and signs a checkpoint (the heads already named by chainRef). */
export function signCheckpoint(
  input: { interval: number; intervalSeconds: number; at: number; prev: string; heads: readonly ChainHeadRecord[] },
  key: { kid: string; privateKey: KeyObject },
): StoredCheckpoint {
  const body: CheckpointBody = {
    format: CHECKPOINT_FORMAT,
    interval: input.interval,
    intervalSeconds: input.intervalSeconds,
    at: input.at,
    prev: input.prev,
    kid: key.kid,
    heads: input.heads.map((h) => [h.chain, h.seq, toHex(h.hash)]),
  };
  const text = checkpointText(body);
  return {
    interval: body.interval,
    body: text,
    hash: createHash("sha256").update(text, "utf8").digest(),
    signature: sign(null, Buffer.from(text, "utf8"), key.privateKey),
  };
}

/** The exported form of a stored checkpoint. */
export function exportCheckpoint(c: StoredCheckpoint): ExportedCheckpoint {
  return { body: JSON.parse(c.body) as CheckpointBody, hash: toHex(c.hash), signature: toHex(c.signature) };
}

/** Outcome of checking a run of checkpoints. */
export type CheckpointsVerification = { ok: true; count: number } | { ok: false; interval: number; reason: string };

/**
 * Checks checkpoints in interval order: each body re-encodes to the text that was signed, its
 * hash and signature hold under the public key, and it links to the one before (the first of
 * the run links to genesis only when `fromStart`).
 */
export function verifyCheckpoints(checkpoints: readonly ExportedCheckpoint[], publicKey: KeyObject, options: { fromStart?: boolean } = {}): CheckpointsVerification {
  let prev: ExportedCheckpoint | null = null;
  for (const c of checkpoints) {
    const text = checkpointText(c.body);
    const interval = c.body.interval;
    if (c.body.format !== CHECKPOINT_FORMAT) return { ok: false, interval, reason: `unknown checkpoint format ${JSON.stringify(c.body.format)}` };
    if (createHash("sha256").update(text, "utf8").digest("hex") !== c.hash) return { ok: false, interval, reason: "checkpoint hash does not match its body" };
    if (!verify(null, Buffer.from(text, "utf8"), publicKey, Buffer.from(c.signature, "hex"))) {
      return { ok: false, interval, reason: "checkpoint signature does not verify" };
    }
    if (prev && interval <= prev.body.interval) return { ok: false, interval, reason: `checkpoint out of order after interval ${prev.body.interval}` };
    if (prev && c.body.prev !== prev.hash) return { ok: false, interval, reason: `checkpoint does not link to the checkpoint of interval ${prev.body.interval}` };
    if (!prev && options.fromStart && c.body.prev !== CHECKPOINT_GENESIS) return { ok: false, interval, reason: "first checkpoint does not link to genesis" };
    prev = c;
  }
  return { ok: true, count: checkpoints.length };
}

/** Every head each checkpoint pins, per chain: chain id → [{seq, hash}]. */
export function pinnedHeads(checkpoints: readonly ExportedCheckpoint[]): Map<string, { seq: number; hash: Uint8Array }[]> {
  const pins = new Map<string, { seq: number; hash: Uint8Array }[]>();
  for (const c of checkpoints) {
    for (const [chain, seq, hash] of c.body.heads) {
      const list = pins.get(chain) ?? [];
      pins.set(chain, list);
      list.push({ seq, hash: new Uint8Array(Buffer.from(hash, "hex")) });
    }
  }
  return pins;
}
