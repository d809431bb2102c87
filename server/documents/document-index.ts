// What the document rules need to know about a conversation without holding a Y.Doc: for every
// Yjs client id, how far its clock runs, which parent each run of its items lives in (so a delete
// or an insert can be placed in `messages` or elsewhere), how deep each shared type nests, and
// which actor owns the client id. Built from the merged state once, then kept up to date from the
// structs of each update (see ./update-structs.ts).

/**
 * Where an item lives: `r:<name>` a root type, `t:<client>:<clock>` the shared type created by
 * that item, `""` nowhere a reader can see (garbage collected, or its left neighbour was).
 */
export type ParentRef = string;

/** The parent of every entry of the conversation's message list. */
export const MESSAGES_PARENT: ParentRef = "r:messages";

/** The parent reference of a root type. */
export const rootParent = (name: string): ParentRef => `r:${name}`;
/** The parent reference of the shared type an item at `client:clock` created. */
export const typeParent = (client: number, clock: number): ParentRef => `t:${client}:${clock}`;

/** An actor a client id belongs to. */
export interface ClientOwner {
  user: string;
  org: string;
  /**
   * The id was first used by a restore: its entries are past ones re-added by the server (checked
   * then), so they are attributed to the authors they name, not to the person who restored.
   */
  restore?: boolean;
}

/** A run of one client's consecutive clocks that share a parent. */
interface Run {
  start: number;
  end: number;
  parent: ParentRef;
}

/** One run of new items an update adds, as recorded in the index. */
export interface RunEffect {
  client: number;
  start: number;
  end: number;
  parent: ParentRef;
}

/** What an update adds to the index once accepted. */
export interface IndexEffects {
  runs: RunEffect[];
  /** Shared types created, by parent reference, with their nesting depth (a root's child: 1). */
  types: [ParentRef, number][];
}

/** The per-conversation index of the document rules. */
export class DocumentIndex {
  private readonly runs = new Map<number, Run[]>();
  private readonly depths = new Map<ParentRef, number>();
  private readonly owners = new Map<number, ClientOwner>();
  /** Client ids whose clock is known but whose owner is not, counted as they come and go. */
  private unowned = 0;
  /** Clock units (items, characters, values) ever inserted, deleted ones included. */
  itemCount = 0;

  /** The first clock of `client` not known yet (0: the client never wrote). */
  clockOf(client: number): number {
    const runs = this.runs.get(client);
    return runs && runs.length > 0 ? runs[runs.length - 1].end : 0;
  }

  /** The parent of the item at `client:clock`; undefined when no such item is known. */
  parentAt(client: number, clock: number): ParentRef | undefined {
    const runs = this.runs.get(client);
    if (!runs) return undefined;
    let low = 0;
    let high = runs.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const run = runs[mid];
      if (clock < run.start) high = mid - 1;
      else if (clock >= run.end) low = mid + 1;
      else return run.parent;
    }
    return undefined;
  }

  /** True when any clock in `client:[clock, clock+length)` is an entry of the message list. */
  touchesMessages(client: number, clock: number, length: number): boolean {
    const runs = this.runs.get(client);
    if (!runs) return false;
    const end = clock + length;
    // First run ending after `clock`, then every run starting before `end`.
    let low = 0;
    let high = runs.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (runs[mid].end <= clock) low = mid + 1;
      else high = mid;
    }
    for (let i = low; i < runs.length && runs[i].start < end; i++) if (runs[i].parent === MESSAGES_PARENT) return true;
    return false;
  }

  /** Nesting depth of a shared type (0 for a root), undefined when the type is unknown. */
  depthOf(parent: ParentRef): number | undefined {
    if (parent.startsWith("r:")) return 0;
    return this.depths.get(parent);
  }

  /** The actor owning `client`, when known. */
  ownerOf(client: number): ClientOwner | undefined {
    return this.owners.get(client);
  }

  /** Records who owns a client id (the first actor that used it). */
  setOwner(client: number, owner: ClientOwner): void {
    if (this.owners.has(client)) return;
    this.owners.set(client, { user: owner.user, org: owner.org, ...(owner.restore ? { restore: true } : {}) });
    if (this.runs.has(client)) this.unowned--;
  }

  /**
   * True when some client id's clock is known but not its owner (another node's commit). Asked
   * before every write: a count, not a scan of every client id the conversation ever had.
   */
  hasUnownedClients(): boolean {
    return this.unowned > 0;
  }

  /** Adds what an update brought; clocks already known are skipped, so recording twice is harmless. */
  record(effects: IndexEffects): void {
    for (const run of effects.runs) {
      const start = Math.max(run.start, this.clockOf(run.client));
      if (start >= run.end) continue;
      let runs = this.runs.get(run.client);
      if (!runs) {
        runs = [];
        this.runs.set(run.client, runs);
        if (!this.owners.has(run.client)) this.unowned++;
      }
      this.itemCount += run.end - start;
      const last = runs[runs.length - 1];
      if (last && last.end === start && last.parent === run.parent) last.end = run.end;
      else runs.push({ start, end: run.end, parent: run.parent });
    }
    for (const [type, depth] of effects.types) if (!this.depths.has(type)) this.depths.set(type, depth);
  }
}
