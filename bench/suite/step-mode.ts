// Step mode (--full): raises the chatty scenario's rate step by step against one server until it
// stops sustaining it (any loss, p99 ≥ 100 ms, or a failed run; a p99 miss is retried once);
// the last passing step is that server's highest sustained rate.

import type { ServerName } from "../clients/index.ts";
import type { CaseResult } from "./result.ts";
import { type CaseContext, generatorBound, runFanoutCase } from "./run-case.ts";

/** What step mode found for one server. */
export interface StepOutcome {
  server: ServerName;
  steps: CaseResult[];
  /** Highest rate per writer that passed, or 0 when none did. */
  sustainedRatePerWriter: number;
  sustainedUpdatesPerSec: number;
  sustainedDeliveriesPerSec: number;
  /** Why the next step failed ("" when every step passed). */
  stoppedBecause: string;
  /** Server and generator used up both cores on a passing step: the true limit may be higher. */
  generatorLimited: boolean;
}

const P99_LIMIT_MS = 100;

/** Why a step does not count as sustained, or "" when it does. */
export function stepFailure(row: CaseResult): string {
  if (row.status !== "ok" || !row.fanout) return row.note || row.status;
  const r = row.fanout;
  if (r.connectFailures > 0) return `${r.connectFailures} clients failed to connect`;
  if (r.loss > 0) return `loss ${r.loss}`;
  if (!(r.latency.p99 < P99_LIMIT_MS)) return `p99 ${r.latency.p99.toFixed(1)} ms`;
  return "";
}

export async function findSustainedRate(server: ServerName, context: CaseContext, log: (line: string) => void): Promise<StepOutcome> {
  const config = context.config;
  const outcome: StepOutcome = {
    server,
    steps: [],
    sustainedRatePerWriter: 0,
    sustainedUpdatesPerSec: 0,
    sustainedDeliveriesPerSec: 0,
    stoppedBecause: "",
    generatorLimited: false,
  };
  const chatty = config.fanout.chatty;
  for (const rate of config.stepRates) {
    // Each attempt in rooms of its own: the generator's updates are the same every time, and a
    // server that already has them (Parley) applies, stores and forwards nothing the second time.
    let attempts = 0;
    const attempt = () =>
      runFanoutCase(`step:${rate}`, server, { ...chatty, ratePerWriter: rate }, config.stepTiming, context, `step${rate}`.replace(".", "_") + `a${++attempts}`);
    let row = await attempt();
    // A latency miss may be a stall caused by something else on the machine: it gets one retry.
    if (row.fanout && row.fanout.loss === 0 && stepFailure(row).startsWith("p99")) {
      log(`step chatty × ${server} at ${rate}/s per writer: ${stepFailure(row)}, retrying once`);
      outcome.steps.push(row);
      row = await attempt();
    }
    outcome.steps.push(row);
    const failure = stepFailure(row);
    log(`step chatty × ${server} at ${rate}/s per writer: ${failure || "sustained"}`);
    if (failure) {
      outcome.stoppedBecause = `at ${rate}/s per writer: ${failure}`;
      break;
    }
    outcome.sustainedRatePerWriter = rate;
    outcome.sustainedUpdatesPerSec = row.fanout!.offeredUpdatesPerSec;
    outcome.sustainedDeliveriesPerSec = row.fanout!.deliveriesPerSec;
    if (generatorBound(row)) outcome.generatorLimited = true;
  }
  return outcome;
}
