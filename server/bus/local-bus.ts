// The in-process bus of a single node: there are no other nodes, so publishing goes nowhere and
// nothing can ever be missed. Local subscribers are served by the Broadcaster, not by the bus.

import type { AccessChange } from "./access-events.ts";
import type { Bus, BusHandler, BusHealth } from "./bus.ts";

/** A bus for one node alone. */
export class LocalBus implements Bus {
  readonly shared = false;

  constructor(readonly nodeId: string) {}

  setHandler(_handler: BusHandler): void {}
  publishUpdate(_conversation: string, _seq: number, _update: Uint8Array): void {}
  publishSnapshot(_conversation: string, _seq: number): void {}
  publishAwareness(_conversation: string, _session: string, _update: Uint8Array, _who: string): void {}
  publishAccess(_change: AccessChange): void {}
  onAccess(_listener: (change: AccessChange) => void): void {}
  publishEventHead(_org: string, _cursor: number): void {}
  onEventHead(_listener: (org: string, cursor: number) => void): void {}
  subscribe(_conversation: string): void {}
  unsubscribe(_conversation: string): void {}

  health(): BusHealth {
    return { state: "local" };
  }

  async close(): Promise<void> {}
}
