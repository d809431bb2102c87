// Wires the audit trail beyond conversation logs: the audit log beside the directory and the org
// event recorder. The composition root opens it before identity (whose routes record through it)
// and hands `recorder` to whoever records org events (identity, deletion, retention, exports).

import type { ServerKeys } from "../crypto/keys.ts";
import type { Config } from "../platform/config.ts";
import type { Logger } from "../platform/logger.ts";
import type { Store } from "../store/store.ts";
import { type AuditLog, openAuditLog } from "../directory/audit-log.ts";
import { type CheckpointKey, loadOrCreateCheckpointKey } from "./checkpoint-key.ts";
import { Checkpointer } from "./checkpointer.ts";
import { OrgAuditRecorder } from "../directory/org-recorder.ts";
import type { Clock } from "../platform/clock.ts";
import type { WorkerThread } from "../sql/worker-service.ts";

/** The audit trail as the rest of the server sees it. */
export interface Audit {
  log: AuditLog;
  /** The audit log's worker threads (SQLite: one; Postgres: none), for /healthz. */
  workers: readonly WorkerThread[];
  /** `recorder.recordOrgEvent(org, {action, actor, target, details, personal})`. */
  recorder: OrgAuditRecorder;
  /** Makes the signed checkpoint of each interval (tests call `tick()` after moving the clock). */
  checkpointer: Checkpointer;
  checkpointKey: CheckpointKey;
  close(): Promise<void>;
}

/** Opens the audit log; with `store`, also starts making checkpoints (the server; the CLI passes none). */
export async function openAudit(
  config: Config,
  deps: { keys: ServerKeys; logger: Logger; now: Clock; store?: Pick<Store, "listChainHeads"> },
): Promise<Audit> {
  const now = deps.now;
  const handle = await openAuditLog({ dataDir: config.dataDir, databaseUrl: config.store.databaseUrl });
  const recorder = new OrgAuditRecorder({ log: handle.log, auditKey: deps.keys.auditKey, now, logger: deps.logger });
  const checkpointKey = await loadOrCreateCheckpointKey(config.keysDir);
  const noHeads = { listChainHeads: async () => [] };
  const checkpointer = new Checkpointer({
    log: handle.log,
    store: deps.store ?? noHeads,
    key: checkpointKey,
    auditKey: deps.keys.auditKey,
    intervalSeconds: config.audit.checkpointIntervalSeconds,
    now,
    logger: deps.logger,
  });
  if (deps.store) checkpointer.start();
  return {
    log: handle.log,
    workers: handle.workers,
    recorder,
    checkpointer,
    checkpointKey,
    close: async () => {
      await checkpointer.stop();
      await handle.close();
    },
  };
}
