// Reads a process's CPU time and resident memory from /proc (Linux): CPU from /proc/<pid>/stat
// (utime + stime of all its threads, in clock ticks), RSS from VmRSS in /proc/<pid>/status.

import { readdirSync, readFileSync } from "node:fs";

// USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK); /proc reports ticks of it.
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process has used so far, or NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes, or NaN when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds all processes on the machine have used so far (busy time of every core). */
export function machineCpuSeconds(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = ticks[3] + ticks[4];
    return (ticks.reduce((a, b) => a + b, 0) - idle) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** True while a process with this pid exists (and is not a zombie). */
export function processExists(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * CPU seconds each thread of this process used so far, by thread id ("main" is the process's own
 * thread, the others carry their thread names), from /proc/self/task/<tid>/stat.
 */
export function threadCpuSeconds(): Map<string, { name: string; seconds: number }> {
  const threads = new Map<string, { name: string; seconds: number }>();
  for (const tid of readdirSync("/proc/self/task")) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    const name = tid === String(process.pid) ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    threads.set(tid, { name, seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND });
  }
  return threads;
}
