// The webhook address check: no spelling of a loopback, private, link-local or otherwise
// non-public address gets through, in particular IPv4 hidden in IPv6 (mapped, translated,
// NAT64, 6to4, compatible). Runs: PARLEY_PROPERTY_RUNS (default 300), seed PARLEY_PROPERTY_SEED.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isPublicAddress } from "../server/webhooks/address-policy.ts";

const settings = {
  numRuns: Number(process.env.PARLEY_PROPERTY_RUNS ?? 300),
  seed: process.env.PARLEY_PROPERTY_SEED ? Number(process.env.PARLEY_PROPERTY_SEED) : undefined,
};

const octet = fc.nat(255);
/** IPv4 addresses no webhook may reach: loopback, private, link-local, CGNAT, "this network". */
const internalV4 = fc.oneof(
  fc.tuple(fc.constant(127), octet, octet, octet),
  fc.tuple(fc.constant(10), octet, octet, octet),
  fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 }), octet, octet),
  fc.tuple(fc.constant(192), fc.constant(168), octet, octet),
  fc.tuple(fc.constant(169), fc.constant(254), octet, octet),
  fc.tuple(fc.constant(100), fc.integer({ min: 64, max: 127 }), octet, octet),
  fc.tuple(fc.constant(0), octet, octet, octet),
);

/** Eight 16-bit groups written as one of the many texts that mean them. */
function spell(groups: readonly number[], style: { zeros: number[]; upper: boolean; compress: boolean; dottedTail: boolean }): string {
  const hex = groups.map((g, i) => {
    const text = g.toString(16).padStart(1 + (style.zeros[i] % 4), "0").slice(-4);
    return style.upper ? text.toUpperCase() : text;
  });
  let parts = hex;
  if (style.dottedTail) {
    const [a, b] = [groups[6], groups[7]];
    parts = [...hex.slice(0, 6), `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`];
  }
  if (style.compress) {
    // Compress the first run of zero groups, as any writer may.
    const start = groups.findIndex((g, i) => g === 0 && i < 6);
    if (start >= 0) {
      let end = start;
      while (end + 1 < 6 && groups[end + 1] === 0) end++;
      return `${parts.slice(0, start).join(":")}::${parts.slice(end + 1).join(":")}`;
    }
  }
  return parts.join(":");
}

const style = fc.record({ zeros: fc.array(fc.nat(3), { minLength: 8, maxLength: 8 }), upper: fc.boolean(), compress: fc.boolean(), dottedTail: fc.boolean() });
const v4Groups = ([a, b, c, d]: number[]) => [(a << 8) | b, (c << 8) | d];

/** IPv6 prefixes that carry an IPv4 address in their last 32 bits. */
const carriers = fc.constantFrom(
  [0, 0, 0, 0, 0, 0xffff], // mapped
  [0, 0, 0, 0, 0xffff, 0], // translated (RFC 6145)
  [0, 0, 0, 0, 0, 0], // compatible (deprecated)
  [0x64, 0xff9b, 0, 0, 0, 0], // NAT64 well-known prefix
  [0x64, 0xff9b, 1, 0, 0, 0], // NAT64 local-use prefix (RFC 8215)
);

describe("webhook address classifier", () => {
  it("refuses every IPv6 spelling of an internal IPv4 address", () => {
    fc.assert(
      fc.property(internalV4, carriers, style, (v4, prefix, how) => {
        const address = spell([...prefix, ...v4Groups(v4)], how);
        expect(isPublicAddress(address), address).toBe(false);
      }),
      settings,
    );
  });

  it("refuses 6to4, Teredo and NAT64 of any IPv4 address, internal or not", () => {
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), fc.array(fc.nat(0xffff), { minLength: 5, maxLength: 5 }), style, (v4, rest, how) => {
        const [hi, lo] = v4Groups(v4);
        for (const groups of [[0x2002, hi, lo, ...rest], [0x2001, 0, ...rest, 0], [0x64, 0xff9b, 1, rest[0], rest[1], rest[2], hi, lo]]) {
          const address = spell(groups.slice(0, 8), { ...how, dottedTail: false });
          expect(isPublicAddress(address), address).toBe(false);
        }
      }),
      settings,
    );
  });

  it("refuses loopback, unique-local, link-local, multicast and unspecified IPv6 in any spelling", () => {
    const local = fc.oneof(
      fc.constant([0, 0, 0, 0, 0, 0, 0, 1]),
      fc.constant([0, 0, 0, 0, 0, 0, 0, 0]),
      fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }).map((g) => [0xfc00 | (g[0] & 0x1ff), ...g.slice(1), 1]),
      fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }).map((g) => [0xfe80 | (g[0] & 0x3f), ...g.slice(1), 1]),
      fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }).map((g) => [0xff00 | (g[0] & 0xff), ...g.slice(1), 1]),
    );
    fc.assert(
      fc.property(local, style, (groups, how) => {
        const address = spell(groups, { ...how, dottedTail: false });
        expect(isPublicAddress(address), address).toBe(false);
      }),
      settings,
    );
  });

  it.each(["[::ffff:0:127.0.0.1]", "::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "64:ff9b:1::7f00:1", "64:ff9b::127.0.0.1", "::127.0.0.1", "127.1", "2130706433", "0x7f000001", "fe80::1%eth0"])(
    "refuses %s",
    (address) => {
      expect(isPublicAddress(address.replace(/^\[|\]$/g, ""))).toBe(false);
    },
  );
});
