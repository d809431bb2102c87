// Who owns each Yjs client id of a conversation, rebuilt from the log: the actor of the first
// update entry that carries a struct of that client. Every entry keeps its actor and payload
// (compaction adds snapshots, it never folds entries away), so the answer survives restarts and
// compaction, and every node that reads the same log reaches the same answer.

import * as Y from "yjs";
import type { Store } from "../store/store.ts";
import type { ClientOwner } from "./document-index.ts";

const PAGE = 512;

/** Audit entries of restores carry this session prefix (server/history/history-routes.ts). */
export const RESTORE_SESSION = "restore:";

/** Client-id owners read from a log up to `seq`. */
export interface LogOwners {
  owners: Map<number, ClientOwner>;
  /** Last entry read. */
  seq: number;
}

/**
 * The first writer of each client id in `conversation`'s log, reading it in pages; given `from`,
 * continues after what it read.
 */
export async function clientOwnersFromLog(store: Pick<Store, "readEntries">, conversation: string, from?: LogOwners): Promise<LogOwners> {
  const owners = from?.owners ?? new Map<number, ClientOwner>();
  let after = from?.seq ?? 0;
  for (;;) {
    const entries = await store.readEntries(conversation, after, PAGE);
    for (const entry of entries) {
      if (entry.kind !== "update" || !entry.payload) continue;
      let meta: ReturnType<typeof Y.parseUpdateMeta>;
      try {
        meta = Y.parseUpdateMeta(entry.payload);
      } catch {
        continue; // stored before the rules; it names nobody
      }
      for (const client of meta.to.keys()) {
        if (!owners.has(client) && (meta.to.get(client) ?? 0) > (meta.from.get(client) ?? 0)) {
          owners.set(client, { user: entry.user, org: entry.org, ...(entry.session.startsWith(RESTORE_SESSION) ? { restore: true } : {}) });
        }
      }
    }
    if (entries.length > 0) after = entries[entries.length - 1].seq;
    if (entries.length < PAGE) return { owners, seq: after };
  }
}
