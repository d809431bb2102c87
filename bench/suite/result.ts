// One row of the report: a scenario run against one server, whatever its kind, with the server's
// and the generator's resource use. Plain data, written as-is to bench/results/latest.json.

import type { ServerName } from "../clients/index.ts";
import type { FanoutResult, IdleResult, JoinResult } from "../load/plan.ts";
import type { ProcessUsage } from "../measure/sampler.ts";
import type { ScenarioName } from "./scenarios.ts";

/** What an idle run adds: the server's memory before and after the idle clients joined. */
export interface IdleMeasurement extends IdleResult {
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** How far two measurements of the same state disagreed, per connection: the figure's ±. */
  noiseBytesPerConnection: number;
}

/** What the shared services did per committed update (cluster scenario). */
export interface ServicesPerUpdate {
  /** Redis calls per update by command, and in all. */
  redisByCommand: Record<string, number>;
  redisPerUpdate: number;
  /** Postgres transactions (database-wide, less the baseline), rows written and index scans (the run's schema) per update. */
  pgCommitsPerUpdate: number;
  pgRowsWrittenPerUpdate: number;
  pgIndexScansPerUpdate: number;
  /** Group commits per update, from Parley's own counters (each is one Postgres transaction). */
  commitsPerUpdate: number;
  /** Updates committed in the window (Parley's counters; what the figures are divided by). */
  updates: number;
}

export interface CaseResult {
  scenario: ScenarioName | `step:${number}`;
  server: ServerName;
  status: "ok" | "skipped" | "failed";
  /** Why it was skipped or failed, or a remark on an ok run. */
  note: string;
  /** The offered load in words ("10 writers × 20/s"). */
  load: string;
  fanout?: FanoutResult;
  idle?: IdleMeasurement;
  join?: JoinResult;
  /** Parley nodes serving the case (cluster scenario only: 1 = the one-node reference). */
  nodes?: number;
  /** Cluster scenario: Redis and Postgres operations per committed update over the measured window, less an idle baseline. */
  services?: ServicesPerUpdate;
  /** Summed over the nodes when there are several (CPU added, RSS added); each node in node_usage. */
  server_usage?: ProcessUsage;
  node_usage?: ProcessUsage[];
  generator_usage?: ProcessUsage;
  /** CPU used by everything else on the machine meanwhile, percent of one core: noise. */
  other_cpu_percent?: number;
  durationMs: number;
}
