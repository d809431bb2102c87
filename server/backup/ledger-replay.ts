// `parley ledger replay`, and the last step of `parley restore`: replays the deletion ledger over
// restored databases while no server runs, through the same ConversationLifecycle the server
// replays with at every start. Embedded or Postgres alike: after a pg_dump or PITR restore this is
// the step that destroys again what the restored data brought back.

import type { Config } from "../platform/config.ts";
import { openDirectory } from "../directory/open-directory.ts";
import { AccessEvents } from "../bus/access-events.ts";
import { ConversationLifecycle, type ReplayOutcome } from "../lifecycle/conversation-lifecycle.ts";
import { DeletionLedger } from "../lifecycle/deletion-ledger.ts";
import { lifecycleAudit } from "../lifecycle/lifecycle-audit.ts";
import type { Logger } from "../platform/logger.ts";
import { forgetPartnerCopies, openPartnerStorage } from "../webhooks/partner-storage.ts";
import { openOfflineStore } from "./offline-store.ts";

/** What a replay did, in a line for the operator. */
export function describeReplay(outcome: ReplayOutcome): string {
  const { conversations, persons } = outcome;
  if (conversations.length + persons.length === 0) return "deletion ledger replayed: nothing destroyed had come back";
  return `deletion ledger replayed: destroyed again ${conversations.length} conversation(s) [${conversations.join(", ")}] and erased again ${persons.length} person(s) [${persons.join(", ")}]`;
}

/** Replays the data directory's deletion ledger over the configured store, directory and partner events. */
export async function replayLedgerOffline(config: Config, logger: Logger): Promise<ReplayOutcome> {
  // Opened first: a damaged ledger stops the replay before any database is opened.
  const ledger = await DeletionLedger.open(config.dataDir);
  const opened: { close(): Promise<void> }[] = [];
  try {
    const store = await openOfflineStore(config);
    opened.push(store);
    const where = { dataDir: config.dataDir, databaseUrl: config.store.databaseUrl };
    // Kept whole: the Postgres handle's close() needs its `this`.
    const directory = await openDirectory(where);
    opened.push(directory);
    const partner = await openPartnerStorage(where);
    opened.push(partner);
    const lifecycle = new ConversationLifecycle({
      directory: directory.directory,
      store,
      ledger,
      // No server runs: there are no sockets to close and no cache to drop.
      accessEvents: new AccessEvents(),
      evict: () => {},
      forgetPartnerEvents: (conversation, org) => forgetPartnerCopies(partner, conversation, org),
      audit: lifecycleAudit(null, logger),
      logger,
      now: Date.now,
    });
    return await lifecycle.replayDeletionLedger();
  } finally {
    for (const handle of opened.reverse()) await handle.close();
  }
}
