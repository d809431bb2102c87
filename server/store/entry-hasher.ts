// The audit chain's two hashes of every entry on the commit path — the content HMAC and the link
// hash — giving the very bytes of contentHmac and entryHash (audit-chain.ts), only cheaper: one-shot
// SHA-256 calls over buffers reused from entry to entry, hex out (a digest returned as a Buffer is
// an allocation V8 tracks per buffer, the largest cost after the hashing itself), and the results
// cut from one block of memory per few hundred entries. The verifier keeps the reference functions,
// so each implementation checks the other (test/store-entry-hasher.test.ts compares them directly).
// HMAC is RFC 2104 over SHA-256: SHA-256((K ⊕ opad) ‖ SHA-256((K ⊕ ipad) ‖ m)).

import { createHmac, hash } from "node:crypto";
import { AUDIT_FORMAT_VERSION, type ChainFields } from "./audit-chain.ts";
import { ByteArena } from "./byte-arena.ts";

const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;
/** Contents up to this size are copied after the inner pad; larger ones (snapshot states) stream through createHmac. */
const INLINE_CONTENT_BYTES = 16 * 1024;
/** Ids whose JSON is kept (then all are dropped: a cheap bound, refilled within a batch). */
const QUOTED_LIMIT = 4096;

export class EntryHasher {
  /** (K ⊕ ipad) followed by room for the content. */
  private readonly inner: Buffer;
  /** (K ⊕ opad) followed by the inner digest. */
  private readonly outer: Buffer;
  /** prevHash followed by the canonical JSON; grows for unusually long ids. */
  private link = Buffer.alloc(DIGEST_BYTES + 1024);
  private readonly arena = new ByteArena();
  /** The last HMAC handed out and its hex: the entry's hash needs that hex next. */
  private lastHmac: Uint8Array | null = null;
  private lastHmacHex = "";
  /** JSON of the ids seen lately: a batch names each conversation and writer many times. */
  private readonly quoted = new Map<string, string>();
  private readonly quote = (value: string): string => {
    let json = this.quoted.get(value);
    if (json === undefined) {
      if (this.quoted.size >= QUOTED_LIMIT) this.quoted.clear();
      json = JSON.stringify(value);
      this.quoted.set(value, json);
    }
    return json;
  };

  constructor(private readonly auditKey: Uint8Array) {
    // A key longer than the block is hashed first (RFC 2104 section 2).
    const key = auditKey.byteLength > BLOCK_BYTES ? hash("sha256", auditKey, "buffer") : auditKey;
    this.inner = Buffer.alloc(BLOCK_BYTES + INLINE_CONTENT_BYTES, 0x36);
    this.outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES, 0x5c);
    for (let i = 0; i < key.byteLength; i++) {
      this.inner[i] ^= key[i];
      this.outer[i] ^= key[i];
    }
  }

  /** contentHmac(auditKey, content). */
  contentHmac(content: Uint8Array): Uint8Array {
    const hmacHex = this.contentHmacHex(content);
    this.lastHmac = this.arena.fromHex(hmacHex, DIGEST_BYTES);
    this.lastHmacHex = hmacHex;
    return this.lastHmac;
  }

  /** entryHash(prevHash, fields). */
  entryHash(prevHash: Uint8Array, fields: ChainFields): Uint8Array {
    const json = canonicalJson(fields, fields.contentHmac === this.lastHmac ? this.lastHmacHex : hex(fields.contentHmac), this.quote);
    // At most 3 UTF-8 bytes per UTF-16 unit: the write below can never be cut short.
    const need = DIGEST_BYTES + json.length * 3;
    if (need > this.link.length) this.link = Buffer.alloc(need);
    this.link.set(prevHash, 0);
    const written = this.link.write(json, DIGEST_BYTES, "utf8");
    return this.arena.fromHex(hash("sha256", this.link.subarray(0, DIGEST_BYTES + written), "hex"), DIGEST_BYTES);
  }

  private contentHmacHex(content: Uint8Array): string {
    if (content.byteLength > INLINE_CONTENT_BYTES) return createHmac("sha256", this.auditKey).update(content).digest("hex");
    this.inner.set(content, BLOCK_BYTES);
    const innerDigest = hash("sha256", this.inner.subarray(0, BLOCK_BYTES + content.byteLength), "binary");
    this.outer.write(innerDigest, BLOCK_BYTES, "latin1");
    return hash("sha256", this.outer, "hex");
  }
}

/**
 * JSON.stringify of audit-chain.ts's canonical array, written out: the array's elements are
 * strings and safe integers, so the text is the elements' own JSON joined by commas.
 */
export function canonicalJson(f: ChainFields, contentHmacHex = hex(f.contentHmac), quote: (s: string) => string = JSON.stringify): string {
  return (
    `[${AUDIT_FORMAT_VERSION},${quote(f.conversation)},${number(f.seq)},${number(f.at)},${quote(f.user)},` +
    `${quote(f.org)},${quote(f.session)},${quote(f.kind)},${number(f.size)},"${contentHmacHex}"]`
  );
}

/** A safe integer prints the same in a template as in JSON; anything else goes through JSON. */
function number(n: number): string {
  return Number.isSafeInteger(n) ? `${n}` : JSON.stringify(n);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
