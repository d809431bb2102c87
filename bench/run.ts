// `npm run bench` (quick suite, under 3 minutes) and `npm run bench -- --full`: every scenario
// against every server, results to bench/results/latest.{json,md}, the table printed at the end.
// Options: --servers a,b  --scenarios x,y  --out DIR  --smoke (toy sizes, for tests)
// --priority (the benchmark at nice -5, ahead of other work on a shared machine).
// --steps 10,20 (step mode's chatty rates per writer; "none": no step mode) --no-http.
// --chatty-rate 20 (the chatty and join-load scenarios' rate per writer, e.g. to profile a load
// the server carries, so the profile holds no backlog committed after the window).

import { join } from "node:path";
import { parseArgs } from "node:util";
import { SERVER_NAMES, type ServerName } from "./clients/index.ts";
import { writeReport } from "./report/write.ts";
import { REPO_ROOT } from "./servers/registry.ts";
import { killAllNow } from "./suite/children.ts";
import { raiseSessionPriority } from "./suite/priority.ts";
import { SCENARIO_NAMES, type ScenarioName, smokeConfig, suiteConfig } from "./suite/scenarios.ts";
import { runSuite } from "./suite/suite.ts";

// Ahead of other work, without starving it: -5 weighs about three times a default session.
const PRIORITY_NICENESS = -5;

function pick<T extends string>(value: string | undefined, all: readonly T[], what: string): T[] {
  if (!value) return [...all];
  const chosen = value.split(",").map((s) => s.trim());
  const unknown = chosen.filter((s) => !all.includes(s as T));
  if (unknown.length > 0) throw new Error(`unknown ${what}: ${unknown.join(", ")} (known: ${all.join(", ")})`);
  return chosen as T[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      full: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      servers: { type: "string" },
      scenarios: { type: "string" },
      out: { type: "string" },
      priority: { type: "boolean", default: false },
      steps: { type: "string" },
      "no-http": { type: "boolean", default: false },
      "chatty-rate": { type: "string" },
    },
    strict: true,
  });
  const servers = pick<ServerName>(values.servers, SERVER_NAMES, "server");
  const scenarios = pick<ScenarioName>(values.scenarios, SCENARIO_NAMES, "scenario");
  const config = values.smoke ? smokeConfig() : suiteConfig(values.full ? "full" : "quick");
  if (values.steps !== undefined) {
    config.stepRates = values.steps === "none" ? [] : values.steps.split(",").map((rate) => {
      const value = Number(rate);
      if (!(value > 0)) throw new Error(`--steps: not a rate: ${rate}`);
      return value;
    });
  }
  if (values["no-http"]) config.httpSeconds = 0;
  if (values["chatty-rate"] !== undefined) {
    const rate = Number(values["chatty-rate"]);
    if (!(rate > 0)) throw new Error(`--chatty-rate: not a rate: ${values["chatty-rate"]}`);
    config.fanout = { ...config.fanout, chatty: { ...config.fanout.chatty, ratePerWriter: rate }, "join-load": { ...config.fanout["join-load"], ratePerWriter: rate } };
  }
  // On a machine busy with other work, run the benchmark ahead of it (needs root).
  if (values.priority) {
    config.niceness = PRIORITY_NICENESS;
    config.priority = raiseSessionPriority(PRIORITY_NICENESS);
  }
  const command = ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" ");
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  log(`${config.mode}${values.smoke ? " (smoke)" : ""}: ${scenarios.join(", ")} × ${servers.join(", ")}`);

  const report = await runSuite(config, servers, scenarios, command, log);
  const markdown = await writeReport(report, values.out ?? join(REPO_ROOT, "bench/results"));
  process.stdout.write(`${markdown}\n`);
  log(`done in ${(report.durationMs / 1000).toFixed(1)} s`);
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`[bench] ${error.stack ?? error.message}\n`);
    killAllNow();
    process.exit(1);
  },
);
