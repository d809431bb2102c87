// Wakes whoever follows an organisation's stream (SSE clients, socket subscriptions, webhook
// endpoints) once new events are durable. It carries no events: followers read them from the
// store after their own cursor, so a wake-up that is missed or doubled costs nothing but a read.

type Listener = (cursor: number) => void;

/** Per-organisation wake-ups for stream followers. */
export class EventNotifier {
  private readonly listeners = new Map<string, Set<Listener>>();
  private relayTo: ((org: string, cursor: number) => void) | null = null;

  /** Also hands this node's wake-ups to `send` (other nodes sharing the event store; see event-wake.ts). */
  relay(send: (org: string, cursor: number) => void): void {
    this.relayTo = send;
  }

  /** Organisations someone on this node follows. */
  followed(): string[] {
    return [...this.listeners.keys()];
  }

  /** Calls `listener` with the new head cursor whenever `org`'s stream grows; returns an unsubscribe. */
  on(org: string, listener: Listener): () => void {
    let set = this.listeners.get(org);
    if (!set) {
      set = new Set();
      this.listeners.set(org, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(org) === set) this.listeners.delete(org);
    };
  }

  /** `org`'s stream now reaches `cursor` (appended by this node: relayed to the others). */
  published(org: string, cursor: number): void {
    this.relayTo?.(org, cursor);
    this.publishedElsewhere(org, cursor);
  }

  /** `org`'s stream now reaches `cursor`, appended by another node: wakes this node's followers only. */
  publishedElsewhere(org: string, cursor: number): void {
    const set = this.listeners.get(org);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(cursor);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
