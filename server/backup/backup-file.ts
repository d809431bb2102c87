// The backup file's container: a plaintext header, the payload sealed in 1 MiB chunks with
// AES-256-GCM, and a SHA-256 of everything before it. Chunks stream in and out, so a database of
// any size passes through in bounded memory; the per-file key (HKDF from the master key and the
// header's random salt) makes a stolen backup useless without the master key.
//
// Layout: "PARLEYBK" ‖ version (1 byte) ‖ master key id (8) ‖ salt (32) ‖ chunks ‖ SHA-256 of all
// preceding bytes (32). The key id (first 8 bytes of the master key's SHA-256, as in
// crypto/master-key.ts) lets a restore pick the right key after a master key rotation.
// A chunk: plaintext length (u32 BE) ‖ ciphertext ‖ tag (16). Its nonce is an 11-byte counter and a
// final-chunk flag (the STREAM construction): a reordered, dropped or duplicated chunk fails to
// open, and a file cut after a chunk boundary lacks its final chunk, so truncation is detected too.

import { createCipheriv, createDecipheriv, createHash, type Hash, hkdfSync, randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

const MAGIC = Buffer.from("PARLEYBK", "latin1");
/** Bump when the layout changes; readers refuse versions they do not know. */
export const BACKUP_FORMAT_VERSION = 1;
const KEY_ID_BYTES = 8;
const SALT_BYTES = 32;
const HEADER_BYTES = MAGIC.length + 1 + KEY_ID_BYTES + SALT_BYTES;
const TAG_BYTES = 16;
const CHECKSUM_BYTES = 32;
/** Plaintext bytes per chunk: large enough for throughput, small enough to hold a few in memory. */
export const CHUNK_BYTES = 1 << 20;
/** The HKDF label: the backup key is never the key of anything else derived from the master key. */
const KEY_LABEL = "parley backup file v1 aes-256-gcm";

/** A backup file that cannot be trusted: damaged, truncated, tampered, foreign or the wrong key. */
export class BackupError extends Error {
  override readonly name = "BackupError";
}

/** The key for one backup file: HKDF-SHA256 of the master key, the file's salt and a label of its own. */
export function deriveBackupKey(masterKey: Uint8Array, salt: Uint8Array): Buffer {
  if (masterKey.length < 32) throw new BackupError(`master key must hold at least 32 bytes, holds ${masterKey.length}`);
  return Buffer.from(hkdfSync("sha256", masterKey, salt, KEY_LABEL, 32));
}

/** The id naming a master key (never revealing it): the first 8 bytes of its SHA-256. */
export function masterKeyId(masterKey: Uint8Array): Buffer {
  return createHash("sha256").update(masterKey).digest().subarray(0, KEY_ID_BYTES);
}

function chunkNonce(counter: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6); // 48 bits of counter: 2^48 MiB, far beyond any database
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Writes a backup file's container through an open handle: write() the payload, then finish(). */
export class BackupFileWriter {
  private readonly key: Buffer;
  private readonly header: Buffer;
  private readonly checksum = createHash("sha256");
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private counter = 0;
  private started = false;

  constructor(
    private readonly handle: FileHandle,
    masterKey: Uint8Array,
  ) {
    const salt = randomBytes(SALT_BYTES);
    this.key = deriveBackupKey(masterKey, salt);
    this.header = Buffer.concat([MAGIC, Buffer.of(BACKUP_FORMAT_VERSION), masterKeyId(masterKey), salt]);
  }

  /** Appends payload bytes; seals and writes each full chunk as it fills. */
  async write(bytes: Uint8Array): Promise<void> {
    if (!this.started) {
      this.started = true;
      await this.emit(this.header);
    }
    let rest = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (rest.length > 0) {
      const take = Math.min(rest.length, CHUNK_BYTES - this.pendingBytes);
      this.pending.push(rest.subarray(0, take));
      this.pendingBytes += take;
      rest = rest.subarray(take);
      // A full chunk is sealed only once more bytes arrive: the last chunk must carry the final flag.
      if (this.pendingBytes === CHUNK_BYTES && rest.length > 0) await this.seal(false);
    }
  }

  /** Seals the last chunk (possibly empty) and appends the checksum. */
  async finish(): Promise<void> {
    if (!this.started) await this.write(new Uint8Array(0));
    await this.seal(true);
    await this.handle.write(this.checksum.digest());
  }

  private async seal(final: boolean): Promise<void> {
    const plaintext = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const cipher = createCipheriv("aes-256-gcm", this.key, chunkNonce(this.counter++, final), { authTagLength: TAG_BYTES });
    cipher.setAAD(this.header);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(plaintext.length);
    await this.emit(Buffer.concat([length, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
  }

  private async emit(bytes: Buffer): Promise<void> {
    this.checksum.update(bytes);
    await this.handle.write(bytes);
  }
}

/** Reads exactly `length` bytes at `position`, or fails as a truncated file. */
async function readExactly(handle: FileHandle, position: number, length: number, checksum: Hash): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new BackupError("backup file is truncated");
  checksum.update(buffer);
  return buffer;
}

/**
 * Yields the payload of a backup file chunk by chunk, each authenticated before it is yielded.
 * The file's checksum is compared after the last chunk, so a consumer must treat what it got as
 * unverified until the generator has finished without throwing.
 */
export async function* readBackupFile(handle: FileHandle, masterKeys: readonly Uint8Array[]): AsyncGenerator<Buffer> {
  const { size } = await handle.stat();
  if (size < HEADER_BYTES + 4 + TAG_BYTES + CHECKSUM_BYTES) throw new BackupError("backup file is truncated or not a Parley backup");
  const checksum = createHash("sha256");
  const header = await readExactly(handle, 0, HEADER_BYTES, checksum);
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new BackupError("not a Parley backup file");
  const version = header[MAGIC.length];
  if (version !== BACKUP_FORMAT_VERSION) throw new BackupError(`backup file format ${version} is not one this Parley reads (${BACKUP_FORMAT_VERSION})`);
  const keyId = header.subarray(MAGIC.length + 1, MAGIC.length + 1 + KEY_ID_BYTES);
  const masterKey = masterKeys.find((candidate) => masterKeyId(candidate).equals(keyId));
  if (!masterKey) throw new BackupError(`backup file was made with master key ${keyId.toString("hex")}, which is not among this installation's keys`);
  const key = deriveBackupKey(masterKey, header.subarray(MAGIC.length + 1 + KEY_ID_BYTES));
  const end = size - CHECKSUM_BYTES;
  let position = HEADER_BYTES;
  let counter = 0;
  for (;;) {
    if (position + 4 + TAG_BYTES > end) throw new BackupError("backup file is truncated (its final chunk is missing)");
    const length = (await readExactly(handle, position, 4, checksum)).readUInt32BE(0);
    if (length > CHUNK_BYTES || position + 4 + length + TAG_BYTES > end) {
      throw new BackupError("backup file is damaged or truncated (a chunk runs past the end)");
    }
    const sealed = await readExactly(handle, position + 4, length + TAG_BYTES, checksum);
    position += 4 + length + TAG_BYTES;
    const final = position === end;
    const decipher = createDecipheriv("aes-256-gcm", key, chunkNonce(counter++, final), { authTagLength: TAG_BYTES });
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(length));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(sealed.subarray(0, length)), decipher.final()]);
    } catch {
      throw new BackupError(`backup file failed authentication at chunk ${counter} (tampered or truncated)`);
    }
    yield plaintext;
    if (final) break;
  }
  const expected = Buffer.alloc(CHECKSUM_BYTES);
  await handle.read(expected, 0, CHECKSUM_BYTES, end);
  if (!checksum.digest().equals(expected)) throw new BackupError("backup file checksum does not match its contents");
}
