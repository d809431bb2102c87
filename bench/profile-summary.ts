// Summarises V8 .cpuprofile files (node --cpu-prof, one per thread): for each thread, how busy it
// was, then the functions with the most self time (time spent in the function itself) and the most
// total time (time with the function anywhere on the stack, counted once per sample even when
// recursive). Time shares stay meaningful on a busy machine; wall-clock durations do not.
// Run: node --import tsx bench/profile-summary.ts <dir or .cpuprofile files> [--top 25] [--match text]
//   [--from text]: count only from the first sample with a function named like `text` on its
//   stack (e.g. --from submit: leave out the server's start-up, module loading included). Give it
//   more than once for threads that run different code: each thread starts at the first of them
//   it reaches (--from "submit " --from appendPacked: the main thread and the store worker).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface FunctionTime {
  name: string;
  selfMs: number;
  totalMs: number;
}

/** What one thread's profile says. */
export interface ProfileSummary {
  file: string;
  /** Guessed from the scripts it ran: main, store worker, a service worker. */
  thread: string;
  durationMs: number;
  /** Sampled time not idle (nor program/GC bookkeeping shown separately). */
  busyMs: number;
  idleMs: number;
  gcMs: number;
  functions: FunctionTime[];
}

// V8's pseudo-frames: not functions of the program.
const IDLE = "(idle)";
const GC = "(garbage collector)";

function shortUrl(url: string): string {
  const marker = url.lastIndexOf("/node_modules/");
  if (marker >= 0) return url.slice(marker + "/node_modules/".length);
  const parts = url.split("/");
  return parts.slice(-2).join("/");
}

function frameName(frame: CallFrame): string {
  const fn = frame.functionName || "(anonymous)";
  if (!frame.url) return fn;
  return `${fn} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** The thread's job, from the entry module it ran (worker threads load theirs by URL). */
const THREADS: [string, string][] = [
  ["store/sqlite/worker", "store worker"],
  ["partner-storage-worker", "partner-storage worker"],
  ["directory-worker", "directory worker"],
  ["audit-worker", "audit worker"],
];

function guessThread(profile: CpuProfile): string {
  const urls = profile.nodes.map((n) => n.callFrame.url);
  for (const [part, thread] of THREADS) if (urls.some((u) => u.includes(part))) return thread;
  return "main";
}

/** Reads one profile and sums its samples per function (from the first sample whose stack has one of `from`). */
export function summarise(file: string, profile: CpuProfile, from?: string | readonly string[]): ProfileSummary {
  const starts = from === undefined ? [] : typeof from === "string" ? [from] : from;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // Per node, the distinct function names on its stack (memoised: stacks share prefixes).
  const stacks = new Map<number, string[]>();
  const stackOf = (id: number): string[] => {
    const known = stacks.get(id);
    if (known) return known;
    const names = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (node) names.add(frameName(node.callFrame));
    }
    const list = [...names];
    stacks.set(id, list);
    return list;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let idleUs = 0;
  let gcUs = 0;
  let sampledUs = 0;
  let started = starts.length === 0;
  let startUs = profile.startTime;
  let atUs = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    atUs += profile.timeDeltas[i] ?? 0;
    // A sample's delta is the time until the next one; the first delta is from the start.
    const deltaUs = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    if (!started) {
      if (!stackOf(node.id).some((fn) => starts.some((start) => fn.startsWith(start)))) continue;
      started = true;
      startUs = atUs;
    }
    sampledUs += deltaUs;
    const name = node.callFrame.functionName;
    if (name === IDLE) {
      idleUs += deltaUs;
      continue;
    }
    if (name === GC) gcUs += deltaUs;
    const own = frameName(node.callFrame);
    self.set(own, (self.get(own) ?? 0) + deltaUs);
    for (const fn of stackOf(node.id)) total.set(fn, (total.get(fn) ?? 0) + deltaUs);
  }
  const functions = [...total].map(([fn, us]) => ({ name: fn, selfMs: (self.get(fn) ?? 0) / 1000, totalMs: us / 1000 }));
  return {
    file,
    thread: guessThread(profile),
    durationMs: (profile.endTime - startUs) / 1000,
    busyMs: (sampledUs - idleUs) / 1000,
    idleMs: idleUs / 1000,
    gcMs: gcUs / 1000,
    functions,
  };
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "-";
}

/** The summary as text: per thread, top self and top total, shares of the thread's busy time. */
export function formatSummary(summary: ProfileSummary, top: number, match?: string): string {
  const lines: string[] = [];
  const { busyMs } = summary;
  lines.push(
    `== ${summary.thread} (${basename(summary.file)}): ${(summary.durationMs / 1000).toFixed(1)} s profiled, busy ${(busyMs / 1000).toFixed(2)} s ` +
      `(${pct(busyMs, summary.durationMs)} of a core), GC ${pct(summary.gcMs, busyMs)} of busy`,
  );
  const chosen = match ? summary.functions.filter((f) => f.name.includes(match)) : summary.functions;
  const row = (f: FunctionTime) => `  ${pct(f.selfMs, busyMs).padStart(6)} self  ${pct(f.totalMs, busyMs).padStart(6)} total  ${f.name}`;
  lines.push(" top self time (share of busy time):");
  for (const f of [...chosen].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) lines.push(row(f));
  lines.push(" top total time:");
  const totals = [...chosen].filter((f) => !f.name.startsWith("(root)") && !f.name.startsWith("(program)"));
  for (const f of totals.sort((a, b) => b.totalMs - a.totalMs).slice(0, top)) lines.push(row(f));
  return lines.join("\n");
}

function profileFiles(paths: string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort()) if (name.endsWith(".cpuprofile")) files.push(join(path, name));
    } else {
      files.push(path);
    }
  }
  return files;
}

function main(argv: string[]): void {
  // Piped into head: a closed pipe ends the output, not with a stack trace.
  process.stdout.on("error", () => process.exit(0));
  let top = 25;
  let match: string | undefined;
  const from: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--top") top = Number(argv[++i]);
    else if (argv[i] === "--match") match = argv[++i];
    else if (argv[i] === "--from") from.push(argv[++i]);
    else paths.push(argv[i]);
  }
  if (paths.length === 0) {
    console.error("usage: node --import tsx bench/profile-summary.ts <dir or .cpuprofile files> [--top 25] [--match text] [--from text]...");
    process.exit(2);
  }
  for (const file of profileFiles(paths)) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    console.log(formatSummary(summarise(file, profile, from), top, match));
    console.log("");
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
