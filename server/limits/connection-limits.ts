// Concurrent long-lived connections (WebSockets on /ws and /yjs, Server-Sent Event streams) per
// client address, counted on this node. Per node on purpose: a connection lives on one node,
// and a shared count would keep counting a crashed node's connections against their addresses.

import { addressKey } from "./address-key.ts";

/** Counts open connections per address and refuses past the cap. */
export class ConnectionLimits {
  private readonly open = new Map<string, number>();

  constructor(readonly maxPerAddress: number) {}

  /** True when `ip` has room for another connection (does not take it). */
  hasRoom(ip: string): boolean {
    return (this.open.get(addressKey(ip)) ?? 0) < this.maxPerAddress;
  }

  /** Takes a slot for `ip`; false (nothing taken) when the address is at its cap. */
  acquire(ip: string): boolean {
    const key = addressKey(ip);
    const count = this.open.get(key) ?? 0;
    if (count >= this.maxPerAddress) return false;
    this.open.set(key, count + 1);
    return true;
  }

  /** Gives back a slot taken by {@link acquire}. */
  release(ip: string): void {
    const key = addressKey(ip);
    const count = this.open.get(key) ?? 0;
    if (count <= 1) this.open.delete(key);
    else this.open.set(key, count - 1);
  }

  /** Open connections of `ip` (tests, metrics). */
  count(ip: string): number {
    return this.open.get(addressKey(ip)) ?? 0;
  }
}
