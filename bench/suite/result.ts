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
  /** Summed over the nodes when there are several (CPU added, RSS added); each node in node_usage. */
  server_usage?: ProcessUsage;
  node_usage?: ProcessUsage[];
  generator_usage?: ProcessUsage;
  /** CPU used by everything else on the machine meanwhile, percent of one core: noise. */
  other_cpu_percent?: number;
  durationMs: number;
}
