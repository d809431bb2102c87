// --priority: the server and the generator start at a negative nice value; and because Linux's
// autogroup scheduling only compares nice values within one session, this session's autogroup is
// reniced as well for the duration of the run (restored on exit). Needs root; a no-op otherwise.

import { readFileSync, writeFileSync } from "node:fs";

const AUTOGROUP = "/proc/self/autogroup";

/** Renices this session's autogroup; returns what was done, for the report. */
export function raiseSessionPriority(niceness: number): string {
  let previous: string;
  try {
    previous = /nice (-?\d+)/.exec(readFileSync(AUTOGROUP, "utf8"))?.[1] ?? "0";
    writeFileSync(AUTOGROUP, String(niceness));
  } catch (error) {
    return `processes at nice ${niceness}; autogroup unchanged (${(error as Error).message.split("\n")[0]})`;
  }
  process.once("exit", () => {
    try {
      writeFileSync(AUTOGROUP, previous);
    } catch {
      // Nothing more to do on the way out.
    }
  });
  return `processes and session autogroup at nice ${niceness}`;
}
