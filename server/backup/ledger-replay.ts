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
import { openAudit } from "../audit/audit-module.ts";
import { loadOrCreateKeys } from "../crypto/keys.ts";
import type { OrgAuditRecorder } from "../directory/org-recorder.ts";
import type { Directory } from "../directory/directory.ts";
import type { Store } from "../store/store.ts";
import type { Logger } from "../platform/logger.ts";
import { forgetPartnerCopies, openPartnerStorage, type PartnerStorage } from "../webhooks/partner-storage.ts";
import { openOfflineStore } from "./offline-store.ts";
import type { Clock } from "../platform/clock.ts";

/** What a replay did, in a line for the operator. */
export function describeReplay(outcome: ReplayOutcome): string {
  const { conversations, persons } = outcome;
  if (conversations.length + persons.length === 0) return "deletion ledger replayed: nothing destroyed had come back";
  return `deletion ledger replayed: destroyed again ${conversations.length} conversation(s) [${conversations.join(", ")}] and erased again ${persons.length} person(s) [${persons.join(", ")}]`;
}

/** What a replay works on, opened when first asked for; whoever supplies them closes them. */
export interface LedgerReplayParts {
  store(): Promise<Store>;
  /** Inside an object: the directory may be a worker proxy that answers `then`. */
  directory(): Promise<{ directory: Directory }>;
  /** The org audit recorder: a destruction finished here is recorded ("destroyed", `system`, `replayed: true`) as the server's replay records it. */
  audit(): Promise<{ recorder: OrgAuditRecorder }>;
  partnerStorage(): Promise<PartnerStorage>;
  /** The wall clock the replay stamps what it destroys again with. */
  readonly now: Clock;
}

/** Replays `dataDir`'s deletion ledger over the parts given (the CLI's, which it closes itself). */
export async function replayLedger(dataDir: string, parts: LedgerReplayParts, logger: Logger): Promise<ReplayOutcome> {
  // Opened first: a damaged ledger stops the replay before any database is opened.
  const ledger = await DeletionLedger.open(dataDir);
  const store = await parts.store();
  const { directory } = await parts.directory();
  const partner = await parts.partnerStorage();
  const { recorder } = await parts.audit();
  const lifecycle = new ConversationLifecycle({
    directory,
    store,
    ledger,
    // No server runs: there are no sockets to close and no cache to drop.
    accessEvents: new AccessEvents(),
    evict: () => {},
    forgetPartnerEvents: (conversation, org) => forgetPartnerCopies(partner, conversation, parts.now(), org),
    audit: lifecycleAudit((org, event) => recorder.recordOrgEvent(org, event), logger),
    // The removal of the directory record and its "destroyed" entries in one transaction, as the
    // server's replay does it: refused, the record stays and the next replay finishes it.
    auditedChange: (op, args, org, event) => recorder.recordWith(directory, op, args, org, event),
    logger,
    now: parts.now,
  });
  return lifecycle.replayDeletionLedger();
}

/** Replays the data directory's deletion ledger over the configured store, directory and partner events, opened and closed here. */
export async function replayLedgerOffline(config: Config, logger: Logger, now: Clock): Promise<ReplayOutcome> {
  const opened: { close(): Promise<void> }[] = [];
  const kept = <T extends { close(): Promise<void> }>(handle: T): T => {
    opened.push(handle);
    return handle;
  };
  const where = { dataDir: config.dataDir, databaseUrl: config.store.databaseUrl };
  try {
    return await replayLedger(
      config.dataDir,
      {
        store: async () => kept(await openOfflineStore(config, now)),
        // Kept whole: the Postgres handle's close() needs its `this`.
        directory: async () => kept(await openDirectory(where)),
        partnerStorage: async () => kept(await openPartnerStorage(where)),
        audit: async () => kept(await openAudit(config, { keys: await loadOrCreateKeys(config.keysDir), logger, now })),
        now,
      },
      logger,
    );
  } finally {
    for (const handle of opened.reverse()) await handle.close();
  }
}
