// Wires the audit trail beyond conversation logs: the audit log beside the directory and the org
// event recorder. The composition root opens it before identity (whose routes record through it)
// and hands `recorder` to whoever records org events (identity, deletion, retention, exports).

import type { ServerKeys } from "../auth/keys.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import { type AuditLog, openAuditLog } from "./audit-log.ts";
import { OrgAuditRecorder } from "./org-recorder.ts";

/** The audit trail as the rest of the server sees it. */
export interface Audit {
  log: AuditLog;
  /** `recorder.recordOrgEvent(org, {action, actor, target, details, personal})`. */
  recorder: OrgAuditRecorder;
  close(): Promise<void>;
}

export async function openAudit(config: Config, deps: { keys: ServerKeys; logger: Logger; now?: () => number }): Promise<Audit> {
  const now = deps.now ?? Date.now;
  const handle = await openAuditLog({ dataDir: config.dataDir, databaseUrl: config.store.databaseUrl });
  const recorder = new OrgAuditRecorder({ log: handle.log, auditKey: deps.keys.auditKey, now, logger: deps.logger });
  return { log: handle.log, recorder, close: () => handle.close() };
}
