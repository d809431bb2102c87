// The key an address is counted under. IPv4 (and IPv4-mapped IPv6) by the address itself; IPv6
// by its /64, because one subscriber usually holds a whole /64 and could otherwise invent a
// fresh address for every request.

import ipaddr from "ipaddr.js";

/** `v4:1.2.3.4`, `v6:2001:db8:1:2::/64`, or `raw:<text>` for something that is not an address. */
export function addressKey(ip: string): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(ip);
  } catch {
    return `raw:${ip.slice(0, 64)}`;
  }
  if (parsed.kind() === "ipv4") return `v4:${parsed.toString()}`;
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  const prefix = ipaddr.IPv6.parse(`${parts.map((p) => p.toString(16)).join(":")}::`);
  return `v6:${prefix.toString()}/64`;
}
