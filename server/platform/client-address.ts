// The client's address, computed one way for every entry point (HTTP, SSE, /ws, /yjs): IP
// allowlists and per-address throttles key on it, so a second, looser computation anywhere
// would be the way around both. Behind trusted proxies it is the rightmost hop of
// X-Forwarded-For that is not a trusted proxy (entries left of it are the client's own words).

import ipaddr from "ipaddr.js";

/**
 * Which proxies in front of the server are trusted to append to X-Forwarded-For:
 * none (the socket peer is the client), a fixed number of hops, or the proxies' addresses.
 */
export type ProxyTrust = { kind: "none" } | { kind: "hops"; count: number } | { kind: "list"; ranges: readonly (readonly [ipaddr.IPv4 | ipaddr.IPv6, number])[] };

/** What a hop that is not an address is reported as: never an allowlisted address, one throttle bucket for all. */
export const UNKNOWN_ADDRESS = "unknown";

/**
 * Parses the PARLEY_TRUST_PROXY setting: "false" (default), "true" (one proxy, the socket peer),
 * a number of proxy hops, or a comma-separated list of proxy addresses / CIDR ranges. Throws
 * with a message naming the bad entry.
 */
export function parseProxyTrust(value: string): ProxyTrust {
  const text = value.trim();
  if (text === "" || text === "false" || text === "0") return { kind: "none" };
  if (text === "true") return { kind: "hops", count: 1 };
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count > 32) throw new Error(`PARLEY_TRUST_PROXY: at most 32 proxy hops, not ${count}`);
    return { kind: "hops", count };
  }
  const ranges = text.split(",").map((entry) => {
    const item = entry.trim();
    try {
      if (ipaddr.isValidCIDR(item)) return normaliseRange(ipaddr.parseCIDR(item));
      const address = parseHop(item);
      if (address) return [address, address.kind() === "ipv4" ? 32 : 128] as const;
    } catch {
      // reported below
    }
    throw new Error(`PARLEY_TRUST_PROXY: "${item}" is not an address or CIDR range (or true, false, a hop count)`);
  });
  return { kind: "list", ranges };
}

/** An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps. */
function normaliseRange([address, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number]): readonly [ipaddr.IPv4 | ipaddr.IPv6, number] {
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [address, bits];
}

/**
 * One hop as proxies write it: an IPv4 address (four-part decimal, optionally with a port), an
 * IPv6 address (optionally in brackets, with a port). IPv4-mapped IPv6 becomes IPv4. Null for
 * anything else (names, "unknown", obfuscated identifiers, legacy IPv4 spellings).
 */
function parseHop(raw: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  let text = raw.trim();
  // eslint-disable-next-line security/detect-unsafe-regex -- no nested unbounded repetition: linear in the input
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed) text = bracketed[1];
  // eslint-disable-next-line security/detect-unsafe-regex -- bounded repetition only ({1,3}, {3}, {1,5})
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/.test(text)) text = text.slice(0, text.lastIndexOf(":"));
  if (text.includes("%")) return null;
  if (text.includes(":")) {
    if (!ipaddr.IPv6.isValid(text)) return null;
  } else if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return null;
  }
  return ipaddr.process(text);
}

/** The canonical text of an address as this module reports it (IPv4 dotted, IPv6 compressed). */
export function canonicalAddress(raw: string): string {
  const parsed = parseHop(raw);
  return parsed ? parsed.toString() : UNKNOWN_ADDRESS;
}

function trusted(address: ipaddr.IPv4 | ipaddr.IPv6, trust: ProxyTrust & { kind: "list" }): boolean {
  return trust.ranges.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
}

/**
 * The client address of a request that arrived from `socketAddress` carrying `forwardedFor`
 * (every X-Forwarded-For field line joined with commas, in order; "" when absent).
 */
export function clientAddress(socketAddress: string, forwardedFor: string, trust: ProxyTrust): string {
  const peer = canonicalAddress(socketAddress);
  if (trust.kind === "none" || forwardedFor.trim() === "") return peer;
  // The chain as the last proxy saw it: the client's claims first, each proxy's view appended.
  const hops = forwardedFor.split(",").map((hop) => hop.trim());
  if (trust.kind === "hops") {
    if (trust.count === 0) return peer;
    // The socket peer is the first trusted proxy; each further one wrote the hop left of it.
    const index = hops.length - trust.count;
    return canonicalAddress(hops[Math.max(0, index)] ?? "");
  }
  const peerAddress = parseHop(socketAddress);
  if (!peerAddress || !trusted(peerAddress, trust)) return peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseHop(hops[i]);
    // A hop that is not an address was written by the client (or a broken proxy): nothing left of it is known.
    if (!hop) return UNKNOWN_ADDRESS;
    if (!trusted(hop, trust)) return hop.toString();
  }
  // Every hop is a trusted proxy: the leftmost is the closest thing to a client there is.
  return parseHop(hops[0])?.toString() ?? UNKNOWN_ADDRESS;
}

/** Every X-Forwarded-For field line of a request, joined as HTTP joins repeated fields (uWS getHeader() sees only the first). */
export function forwardedForOf(request: { forEach(visit: (key: string, value: string) => void): void }): string {
  const lines: string[] = [];
  request.forEach((key, value) => {
    if (key === "x-forwarded-for") lines.push(value);
  });
  return lines.join(",");
}
