// Wakes followers of partner event streams across nodes that share one event store (Postgres).
// An append on node A wakes A's followers at once (EventNotifier); this relays the new head to
// the other nodes over the bus's node-wide channel, so a partner following on node B sees the
// event about as soon as A's do. The bus is at most once (and may be down), so every node also
// polls the heads of the streams its followers are on: a lost message costs at most one poll
// interval, never an event (followers read from the store after their own cursor).

import type { Bus } from "../bus/bus.ts";
import type { Logger } from "../platform/logger.ts";
import { startBackgroundLoop } from "../platform/background-loop.ts";
import type { EventNotifier } from "./event-notifier.ts";
import type { EventStore } from "./event-store.ts";

/** Relays wake-ups between nodes and polls as the fallback; returns the stop function. */
export function wakeAcrossNodes(deps: { notifier: EventNotifier; bus: Bus; store: Pick<EventStore, "head">; pollMs: number; logger: Logger }): () => void {
  const { notifier, bus } = deps;
  /** The highest head seen per followed organisation, so a poll wakes only when a stream grew. */
  const known = new Map<string, number>();
  const seen = (org: string, cursor: number) => {
    if (cursor > (known.get(org) ?? 0)) known.set(org, cursor);
  };
  notifier.relay((org, cursor) => {
    seen(org, cursor);
    bus.publishEventHead(org, cursor);
  });
  bus.onEventHead((org, cursor) => {
    seen(org, cursor);
    notifier.publishedElsewhere(org, cursor);
  });
  const poll = async () => {
    const followed = notifier.followed();
    for (const org of known.keys()) if (!followed.includes(org)) known.delete(org);
    for (const org of followed) {
      const head = await deps.store.head(org);
      const before = known.get(org);
      seen(org, head);
      // A stream polled for the first time wakes its followers too: an event may have landed
      // between their read and this poll, with its bus message lost.
      if (before === undefined || head > before) notifier.publishedElsewhere(org, head);
    }
  };
  const loop = startBackgroundLoop({ name: "event stream poll", everyMs: deps.pollMs, maxBackoffMs: Math.max(deps.pollMs, 5000), logger: deps.logger, run: poll });
  return () => void loop.stop();
}
