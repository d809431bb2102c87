// The commit path's hasher must give the reference bytes (audit-chain.ts: createHmac and
// JSON.stringify), or stored chains would stop verifying: checked here over random keys of every
// length, contents on both sides of the inline limit and ids with any UTF-16 in them. Its results
// share blocks of memory, so they must also stay intact while later entries are hashed.

import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ChainFields, contentHmac, entryHash } from "../server/store/audit-chain.ts";
import { EntryHasher } from "../server/store/entry-hasher.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;
const SEED = process.env.PARLEY_FUZZ_SEED ? Number(process.env.PARLEY_FUZZ_SEED) : process.env.CI === "true" ? CI_SEED : Date.now() % 2 ** 31;

const text = fc.oneof(fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }), fc.string({ unit: "binary", maxLength: 600 }));
const fields: fc.Arbitrary<ChainFields> = fc.record({
  conversation: text,
  seq: fc.oneof(fc.nat(), fc.maxSafeNat()),
  at: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.integer(), fc.double({ noNaN: true })),
  user: text,
  org: text,
  session: text,
  kind: fc.constantFrom("update", "snapshot"),
  size: fc.nat(),
  contentHmac: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});

describe(`entry hasher (seed ${SEED})`, () => {
  it("gives HMAC-SHA256 of the content for any key length, small and large contents", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 200 }), fc.uint8Array({ maxLength: 20_000 }), (key, content) => {
        const expected = createHmac("sha256", key).update(content).digest();
        expect(Buffer.from(new EntryHasher(key).contentHmac(content)).equals(expected)).toBe(true);
        expect(Buffer.from(contentHmac(key, content)).equals(expected)).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("gives audit-chain's entryHash for any fields", () => {
    const hasher = new EntryHasher(new Uint8Array(32).fill(7));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fields, (prev, f) => {
        expect(Buffer.from(hasher.entryHash(prev, f)).equals(entryHash(prev, f))).toBe(true);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("hashes an entry after its own HMAC (the hex it keeps) like any other", () => {
    const key = new Uint8Array(32).fill(3);
    const hasher = new EntryHasher(key);
    const f: ChainFields = { conversation: "c", seq: 1, at: 5, user: "u", org: "o", session: "s", kind: "update", size: 2, contentHmac: hasher.contentHmac(new Uint8Array([1, 2])) };
    expect(Buffer.from(hasher.entryHash(new Uint8Array(32), f)).equals(entryHash(new Uint8Array(32), { ...f, contentHmac: contentHmac(key, new Uint8Array([1, 2])) }))).toBe(true);
  });

  it("keeps every result it handed out intact while it hashes thousands more", () => {
    const key = new Uint8Array(32).fill(9);
    const hasher = new EntryHasher(key);
    const results: { content: Uint8Array; hmac: Uint8Array }[] = [];
    for (let i = 0; i < 5000; i++) {
      const content = new Uint8Array([i & 255, i >> 8]);
      results.push({ content, hmac: hasher.contentHmac(content) });
    }
    for (const { content, hmac } of results) {
      expect(hmac.byteLength).toBe(32);
      expect(Buffer.from(hmac).equals(createHmac("sha256", key).update(content).digest())).toBe(true);
    }
  });
});
