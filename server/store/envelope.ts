// Envelope encryption at rest, for every store backend: each conversation has its own random
// 256-bit data key, wrapped (AES-256-GCM) by the master key; update payloads and snapshot states
// are AES-256-GCM ciphertext under the data key. Associated data binds a wrapped key to its
// conversation and a record to (format, conversation, kind, seq), so a row copied to another
// conversation, kind or seq fails authentication instead of decrypting. Destroying the data key
// (crypto-shredding) makes every copy of the records, backups included, unreadable.
// Pure crypto and an in-memory cache; where wrapped keys live is keyring.ts.

import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes, randomFillSync } from "node:crypto";
import { statSync } from "node:fs";
import path from "node:path";
import { MASTER_KEY_FILE, type MasterKey, type MasterKeyring, readKeyring } from "../crypto/master-key.ts";
import type { EntryKind } from "./store.ts";
import { StoreError } from "../sql/store-error.ts";
import { monotonicClock } from "../platform/clock.ts";
import { ByteArena } from "./byte-arena.ts";

/** Layout of a sealed record or wrapped key: version ‖ nonce ‖ ciphertext ‖ tag. Bump to change it. */
const FORMAT = 1;
const KEY_BYTES = 32;
/** 96 bits, GCM's native size; random nonces are safe up to 2^32 records per key (NIST SP 800-38D), and each conversation has its own key. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES;

const KIND_BYTE: Record<EntryKind, number> = { update: 1, snapshot: 2 };

/**
 * Canonical associated data: a domain label, the format, the kind, the seq (8 bytes) and the
 * conversation id (length-prefixed so no two tuples encode alike).
 */
function recordAad(conversation: string, kind: EntryKind, seq: number): Buffer {
  // One allocation, the id written in place (this runs once per record on the commit path).
  const idBytes = Buffer.byteLength(conversation, "utf8");
  const aad = Buffer.alloc(AAD_HEAD_BYTES + idBytes);
  aad.write("parley/record/v1", 0, "latin1");
  aad[16] = FORMAT;
  aad[17] = KIND_BYTE[kind];
  setAadSeq(aad, seq);
  aad.writeUInt32BE(idBytes, 26);
  aad.write(conversation, AAD_HEAD_BYTES, "utf8");
  return aad;
}

/** Rewrites the seq of an associated data buffer in place (a batch reuses one per conversation). */
function setAadSeq(aad: Buffer, seq: number): void {
  aad.writeUInt32BE(Math.floor(seq / 2 ** 32), 18);
  aad.writeUInt32BE(seq >>> 0, 22);
}

/** Label (16), format (1), kind (1), seq (8), id length (4). */
const AAD_HEAD_BYTES = 16 + 1 + 1 + 8 + 4;

function wrapAad(conversation: string): Buffer {
  return Buffer.concat([Buffer.from("parley/data-key/v1", "latin1"), Buffer.of(FORMAT), Buffer.from(conversation, "utf8")]);
}

/**
 * `nonce`: NONCE_BYTES fresh random bytes (a batch draws all of its nonces with one random fill).
 * `out`: where to write the sealed bytes, exactly sealedLength(plaintext) long (a new array by default).
 */
function seal(
  key: KeyObject | Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
  out: Uint8Array = new Uint8Array(sealedLength(plaintext)),
): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", key, nonce, GCM_OPTIONS);
  cipher.setAAD(aad);
  // Written into one buffer of the final size: version ‖ nonce ‖ ciphertext ‖ tag.
  out[0] = FORMAT;
  out.set(nonce, 1);
  const body = cipher.update(plaintext);
  out.set(body, HEADER_BYTES);
  const rest = cipher.final();
  if (rest.byteLength > 0) out.set(rest, HEADER_BYTES + body.byteLength);
  out.set(cipher.getAuthTag(), HEADER_BYTES + plaintext.byteLength);
  return out;
}

const GCM_OPTIONS = { authTagLength: TAG_BYTES };

function sealedLength(plaintext: Uint8Array): number {
  return HEADER_BYTES + plaintext.byteLength + TAG_BYTES;
}

/** Null when the sealed bytes do not authenticate (tampered, moved, wrong key). */
function open(key: KeyObject | Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.byteLength < HEADER_BYTES + TAG_BYTES || sealed[0] !== FORMAT) return null;
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(1, HEADER_BYTES), GCM_OPTIONS);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES));
  try {
    const out = Buffer.concat([decipher.update(sealed.subarray(HEADER_BYTES, sealed.byteLength - TAG_BYTES)), decipher.final()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch {
    return null;
  }
}

/** Encrypts one update payload or snapshot state under its conversation's data key. */
export function sealRecord(dataKey: KeyObject, conversation: string, kind: EntryKind, seq: number, plaintext: Uint8Array): Uint8Array {
  return seal(dataKey, plaintext, recordAad(conversation, kind, seq));
}

/** Decrypts a record; a record that does not authenticate is a StoreError, never garbage. */
export function openRecord(dataKey: KeyObject, conversation: string, kind: EntryKind, seq: number, sealed: Uint8Array): Uint8Array {
  const plaintext = open(dataKey, sealed, recordAad(conversation, kind, seq));
  if (plaintext) return plaintext;
  throw new StoreError(
    "undecryptable",
    `cannot decrypt the ${kind} at seq ${seq} of conversation ${JSON.stringify(conversation)}: it fails authentication (tampered, copied from another row, or encrypted under another key)`,
  );
}

/** A data key as stored: which master key wrapped it, and the wrapped bytes. */
export interface WrappedDataKey {
  masterKeyId: string;
  wrapped: Uint8Array;
}

/** A fresh random data key, wrapped by `master` for `conversation`. */
export function newDataKey(master: MasterKey, conversation: string): { key: KeyObject; stored: WrappedDataKey } {
  const raw = randomBytes(KEY_BYTES);
  return { key: createSecretKey(raw), stored: wrapDataKey(master, conversation, raw) };
}

export function wrapDataKey(master: MasterKey, conversation: string, raw: Uint8Array): WrappedDataKey {
  return { masterKeyId: master.id, wrapped: seal(master.key, raw, wrapAad(conversation)) };
}

/** The raw data key; throws a StoreError naming the conversation and key id when it cannot. */
export function unwrapDataKey(master: MasterKey, conversation: string, stored: WrappedDataKey): Uint8Array {
  const raw = open(master.key, stored.wrapped, wrapAad(conversation));
  if (raw?.byteLength === KEY_BYTES) return raw;
  throw new StoreError(
    "undecryptable",
    `cannot unwrap the data key of conversation ${JSON.stringify(conversation)} with master key ${master.id}: tampered or moved`,
  );
}

/** Unwrapped data keys kept in memory, so the hot path does not unwrap per append. */
const DATA_KEY_CACHE_LIMIT = 10_000;
/** How often a file-backed keyring checks whether master.key changed (a rotation). */
const RELOAD_CHECK_MS = 1000;

/**
 * The master keys by id plus a bounded cache of unwrapped data keys. Used by one thread (the
 * SQLite worker, or the Postgres store's event loop).
 */
export class DataKeyring {
  private masters: MasterKey[];
  private readonly byConversation = new Map<string, KeyObject>();
  private stamp = "";
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly ring: MasterKeyring) {
    if (ring.keys.length === 0) throw new StoreError("invalid_request", "the store needs a master key");
    this.masters = ring.keys;
    this.stamp = this.fileStamp();
  }

  /** The key that wraps new data keys; follows master.key when it changes on disk (rotation). */
  currentMaster(): MasterKey {
    const now = monotonicClock();
    if (this.ring.keysDir && now - this.checkedAt >= RELOAD_CHECK_MS) {
      this.checkedAt = now;
      if (this.fileStamp() !== this.stamp) this.reload();
    }
    return this.masters[0];
  }

  /** The master key with this id, re-reading the key files once when it is unknown. */
  master(id: string): MasterKey | undefined {
    const found = this.masters.find((m) => m.id === id);
    if (found || !this.ring.keysDir) return found;
    this.reload();
    return this.masters.find((m) => m.id === id);
  }

  /** Throws, naming the id, when some stored data key is wrapped by a master key this store lacks. */
  requireMasters(ids: Iterable<string>): void {
    for (const id of ids) {
      if (!this.master(id)) {
        throw new StoreError(
          "invalid_request",
          `the database holds data keys wrapped by master key ${id}, but the configured master key is ${this.masters[0].id}: set PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE to that key (or restore its key file)`,
        );
      }
    }
  }

  cached(conversation: string): KeyObject | undefined {
    return this.byConversation.get(conversation);
  }

  /** Unwraps a stored data key and caches it. */
  unwrap(conversation: string, stored: WrappedDataKey): KeyObject {
    const master = this.master(stored.masterKeyId);
    if (!master) this.requireMasters([stored.masterKeyId]);
    const key = createSecretKey(unwrapDataKey(master as MasterKey, conversation, stored));
    this.remember(conversation, key);
    return key;
  }

  remember(conversation: string, key: KeyObject): void {
    if (this.byConversation.size >= DATA_KEY_CACHE_LIMIT) {
      // Drop the oldest entry (Map keeps insertion order): cheap, and a miss only costs an unwrap.
      const oldest = this.byConversation.keys().next().value;
      if (oldest !== undefined) this.byConversation.delete(oldest);
    }
    this.byConversation.set(conversation, key);
  }

  forget(conversation: string): void {
    this.byConversation.delete(conversation);
  }

  private reload(): void {
    if (!this.ring.keysDir) return;
    try {
      this.masters = readKeyring(this.ring.keysDir).keys;
      this.stamp = this.fileStamp();
    } catch {
      // A rotation mid-write: keep the keys we have and look again at the next check.
    }
  }

  private fileStamp(): string {
    if (!this.ring.keysDir) return "";
    try {
      const s = statSync(path.join(this.ring.keysDir, MASTER_KEY_FILE));
      return `${s.ino}:${s.mtimeMs}:${s.size}`;
    } catch {
      return "";
    }
  }
}

/** Where sealUpdates writes ciphertexts: blocks shared by a batch's records, not an array each. */
const sealedUpdates = new ByteArena();

/**
 * Replaces each planned update payload with its ciphertext (the HMAC was taken over the
 * plaintext). The batch's nonces come from one random fill (a call per record cost more than the
 * cipher itself); each record still gets its own 96 random bits. A conversation's associated data
 * is built once per batch and only its seq rewritten per record (the cipher absorbs it at once).
 */
export function sealUpdates(entries: { conversation: string; seq: number; payload: Uint8Array | null }[], keys: ReadonlyMap<string, KeyObject>): void {
  const nonces = randomFillSync(Buffer.alloc(entries.length * NONCE_BYTES));
  const aads = new Map<string, Buffer>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (!entry.payload) continue;
    const key = keys.get(entry.conversation);
    if (!key) throw new StoreError("internal", `no data key for conversation ${JSON.stringify(entry.conversation)}`);
    let aad = aads.get(entry.conversation);
    if (aad) {
      setAadSeq(aad, entry.seq);
    } else {
      aad = recordAad(entry.conversation, "update", entry.seq);
      aads.set(entry.conversation, aad);
    }
    const nonce = nonces.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES);
    entry.payload = seal(key, entry.payload, aad, nonce, sealedUpdates.take(sealedLength(entry.payload)));
  }
}

/** Decrypts update rows of one conversation, in place order. */
export function openUpdates(key: KeyObject, conversation: string, rows: readonly { seq: number; payload: Uint8Array }[]): { seq: number; payload: Uint8Array }[] {
  return rows.map((r) => ({ seq: r.seq, payload: openRecord(key, conversation, "update", r.seq, r.payload) }));
}

/** Decrypts the payloads of log entries (a snapshot entry's payload is its state). */
export function openEntries<E extends { seq: number; kind: EntryKind; payload: Uint8Array | null }>(key: KeyObject, conversation: string, rows: E[]): E[] {
  for (const row of rows) if (row.payload) row.payload = openRecord(key, conversation, row.kind, row.seq, row.payload);
  return rows;
}

/** A conversation with records but no data key: destroyed mid-way, or a keyring from elsewhere. */
export function missingDataKeyError(conversation: string): StoreError {
  return new StoreError(
    "undecryptable",
    `conversation ${JSON.stringify(conversation)} has records but no data key: it was destroyed, or the keyring does not belong to this database`,
  );
}
