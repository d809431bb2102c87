// Per-organisation IP allowlists: entries are single addresses or CIDR ranges, IPv4 or IPv6
// (IPv4-mapped IPv6 addresses match IPv4 ranges). Parsing uses node:net's BlockList, so no
// address arithmetic is written here.

import { BlockList, isIP } from "node:net";

/** True when the entry is an address or a CIDR range node:net understands. */
export function isValidAllowlistEntry(entry: string): boolean {
  const [address, prefix] = entry.split("/");
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return Number.isInteger(bits) && bits >= 0 && bits <= (family === 4 ? 32 : 128);
}

function toList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split("/");
    const type = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

/** True when `ip` may connect given `allowlist` (an empty allowlist allows everyone). */
export function ipAllowed(ip: string, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  const list = toList(allowlist);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const address = mapped ? mapped[1] : ip;
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? "ipv6" : "ipv4");
}
