// Which addresses a webhook may reach: public unicast only. The classification is ipaddr.js's
// (its special-purpose range tables are kept up to date with the IANA registries), so no range
// is written out here. Loopback, private, link-local (cloud metadata at 169.254.169.254),
// carrier-grade NAT, multicast, documentation and reserved ranges are refused, and so is every
// IPv6 form that carries an IPv4 address inside it (NAT64, 6to4, Teredo, IPv4-translated,
// IPv4-compatible), whatever the IPv4 address: a registered URL must not be able to probe the
// network Parley runs in (server-side request forgery). Only plain IPv4-mapped addresses
// (::ffff:a.b.c.d, how a dual-stack socket reports IPv4) are judged by the IPv4 inside them.

import ipaddr from "ipaddr.js";

/** Global unicast IPv6 (2000::/3): everything outside it is reserved, local or special. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");

/** True when `address` (an IP literal, an IPv6 zone allowed) is a public unicast address a webhook may reach. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  // parse() also accepts legacy IPv4 spellings ("0x7f.1", "2130706433"); only the four-part
  // decimal form (what DNS answers and URLs give once normalised) is taken.
  if (!address.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(address)) return false;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === "ipv4") return parsed.range() === "unicast";
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().range() === "unicast";
  return v6.range() === "unicast" && v6.match(GLOBAL_UNICAST_V6);
}
