// Wakes whoever follows an organisation's stream (SSE clients, socket subscriptions, webhook
// endpoints) once new events are durable. It carries no events: followers read them from the
// store after their own cursor, so a wake-up that is missed or doubled costs nothing but a read.

type Listener = (cursor: number) => void;

/** Per-organisation wake-ups for stream followers. */
export class EventNotifier {
  private readonly listeners = new Map<string, Set<Listener>>();

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

  /** `org`'s stream now reaches `cursor`. */
  published(org: string, cursor: number): void {
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
