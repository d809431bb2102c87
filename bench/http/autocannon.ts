// HTTP benchmarks with autocannon against a fresh Parley (its own process, embedded defaults,
// fresh data directory): signing in (bounded by argon2id), posting a message over REST (the
// durable, audited write path) and listing conversations. Accounts and conversations are set up
// through the HTTP API, as the README's walkthrough does, before any clock starts.

import autocannon from "autocannon";
import { loadConfig } from "../../server/platform/config.ts";
import { ProcessSampler } from "../measure/sampler.ts";
import { type ServerUnderTest, startServer } from "../servers/registry.ts";
import { signUpFromOutbox } from "../servers/sign-up.ts";

/** One HTTP benchmark's outcome. */
export interface HttpBenchResult {
  name: string;
  route: string;
  status: "ok" | "skipped" | "failed";
  /** How it was loaded, and anything that qualifies the numbers. */
  note: string;
  connections?: number;
  durationSeconds?: number;
  requestsPerSec?: number;
  latencyMs?: { p50: number; p99: number; max: number };
  /** Connection errors, timeouts and answers other than 2xx. */
  errors?: number;
  timeouts?: number;
  non2xx?: number;
  statusCodes?: Record<string, number>;
  serverCpuPercent?: number;
  serverRssPeakBytes?: number;
}

interface Benchmark {
  name: string;
  route: string;
  connections: number;
  requests: { method: string; path: string; body?: string; token?: string }[];
  note: string;
}

// zxcvbn score 4 and not on the breached list: sign-up accepts it.
const PASSWORD = "violet-harbour-tractor-91!";
const EMAIL = "bench-owner@bench.example";
// A full page (25) plus some: listing returns a whole page and a cursor.
const CONVERSATIONS = 30;
// Posts go round-robin over this many conversations: each post reads its conversation's whole
// document, so one conversation would measure a document growing by thousands of messages.
const POST_CONVERSATIONS = 10;
const CONNECTIONS = 10;

async function api(base: string, method: string, path: string, body?: unknown, token?: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`setup ${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** The argon2id parameters and hash concurrency the server runs with (its config from the same environment). */
function hashSettings(): { argon2: string; maxConcurrentHashes: number } {
  const { argon2, maxConcurrentHashes } = loadConfig(process.env).identity;
  return { argon2: `argon2id m=${argon2.memoryKiB} KiB, t=${argon2.timeCost}, p=${argon2.parallelism}`, maxConcurrentHashes };
}

/** One account and its conversations, made through the API; the benchmarks to run against them. */
async function prepare(base: string, dataDir: string): Promise<Benchmark[]> {
  const signup = await signUpFromOutbox(base, dataDir, { email: EMAIL, password: PASSWORD, name: "Bench Owner", organisation: "Bench BV" });
  const token = String(signup.accessToken);
  const ids: string[] = [];
  for (let i = 0; i < CONVERSATIONS; i++) {
    const conversation = await api(base, "POST", "/v1/conversations", { title: `Bench ${i}`, externalRef: `BENCH-${i}` }, token);
    ids.push(String(conversation.id));
  }
  const { argon2, maxConcurrentHashes } = hashSettings();
  const message = JSON.stringify({ text: "On my way, there by 3pm." });
  return [
    {
      name: "login",
      route: "POST /v1/auth/login",
      // More connections than the server hashes at once would only measure its 429s.
      connections: maxConcurrentHashes,
      requests: [{ method: "POST", path: "/v1/auth/login", body: JSON.stringify({ email: EMAIL, password: PASSWORD }) }],
      note: `${argon2}; ${maxConcurrentHashes} connections = PARLEY_MAX_CONCURRENT_HASHES; one account (successful sign-ins are not throttled)`,
    },
    {
      name: "post a message",
      route: "POST /v1/conversations/:id/messages",
      connections: CONNECTIONS,
      requests: ids.slice(0, POST_CONVERSATIONS).map((id) => ({ method: "POST", path: `/v1/conversations/${id}/messages`, body: message, token })),
      note: `round-robin over ${POST_CONVERSATIONS} conversations; answered once durable and audited`,
    },
    {
      name: "list conversations",
      route: "GET /v1/conversations",
      connections: CONNECTIONS,
      requests: [{ method: "GET", path: "/v1/conversations?limit=25", token }],
      note: `a page of 25 of the account's ${CONVERSATIONS} conversations`,
    },
  ];
}

async function measure(server: ServerUnderTest, bench: Benchmark, seconds: number): Promise<HttpBenchResult> {
  const sampler = new ProcessSampler(server.pid);
  sampler.start();
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: bench.connections,
    duration: seconds,
    timeout: 10,
    requests: bench.requests.map(({ method, path, body, token }) => ({
      method,
      path,
      body,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    })),
  });
  const usage = sampler.stop();
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  const failures = result.errors + result.non2xx;
  return {
    name: bench.name,
    route: bench.route,
    status: result["2xx"] > 0 ? "ok" : "failed",
    note: failures > 0 ? `${bench.note}; answers by status: ${JSON.stringify(statusCodes)}` : bench.note,
    connections: bench.connections,
    durationSeconds: result.duration,
    requestsPerSec: result["2xx"] / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    serverCpuPercent: usage.cpuPercent,
    serverRssPeakBytes: usage.rssPeakBytes,
  };
}

const NAMES = [
  { name: "login", route: "POST /v1/auth/login" },
  { name: "post a message", route: "POST /v1/conversations/:id/messages" },
  { name: "list conversations", route: "GET /v1/conversations" },
];

/** The benchmarks as rows that did not run, with the reason. */
export function httpNotRun(note: string, status: "skipped" | "failed" = "skipped"): HttpBenchResult[] {
  return NAMES.map((bench) => ({ ...bench, status, note }));
}

/** Runs every HTTP benchmark for `seconds` each on one fresh server. Never throws. */
export async function runHttpBenchmarks(seconds: number, niceness = 0, log: (line: string) => void = () => {}): Promise<HttpBenchResult[]> {
  let server: ServerUnderTest | undefined;
  try {
    server = await startServer("parley", niceness);
    const base = `http://127.0.0.1:${server.port}`;
    if (!server.dataDir) throw new Error("the parley server under test has no data directory");
    const benchmarks = await prepare(base, server.dataDir);
    const results: HttpBenchResult[] = [];
    for (const bench of benchmarks) {
      const result = await measure(server, bench, seconds);
      log(`http ${bench.name}: ${result.requestsPerSec?.toFixed(0)} req/s, p99 ${result.latencyMs?.p99} ms, ${result.non2xx} non-2xx, ${result.errors} errors`);
      results.push(result);
    }
    return results;
  } catch (error) {
    if (server) process.stderr.write(`[bench] parley stderr tail:\n${server.stderrTail()}\n`);
    return httpNotRun(`failed: ${(error as Error).message.split("\n")[0].slice(0, 300)}`, "failed");
  } finally {
    await server?.stop();
  }
}
