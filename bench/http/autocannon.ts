// HTTP benchmarks (autocannon against login, post a message, list conversations). Placeholder:
// the HTTP API they exercise does not exist yet, so each one reports "skipped" instead of numbers.
// When the routes land, run autocannon here against the same fresh Parley the suite starts.

/** One HTTP benchmark's outcome. */
export interface HttpBenchResult {
  name: string;
  route: string;
  status: "skipped";
  note: string;
}

const PLANNED = [
  { name: "login", route: "POST /auth/login" },
  { name: "post a message", route: "POST /conversations/:id/messages" },
  { name: "list conversations", route: "GET /conversations" },
];

export function runHttpBenchmarks(): HttpBenchResult[] {
  return PLANNED.map((bench) => ({ ...bench, status: "skipped", note: "skipped: needs the identity issue" }));
}
