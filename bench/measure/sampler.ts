// Samples a process's CPU and RSS over a measurement window: CPU as the average percentage of one
// core between start() and stop(), RSS as the peak and the last value seen while sampling.

import { cpuSeconds, rssBytes } from "./proc.ts";

/** What a sampler saw between start() and stop(). */
export interface ProcessUsage {
  /** Average CPU over the window, percent of one core (200 = both cores busy). */
  cpuPercent: number;
  /** Peak resident memory seen, bytes. */
  rssPeakBytes: number;
  /** Resident memory at stop(), bytes. */
  rssEndBytes: number;
}

export class ProcessSampler {
  private timer: NodeJS.Timeout | undefined;
  private startCpu = 0;
  private startTime = 0;
  private peak = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.startCpu = cpuSeconds(this.pid);
    this.startTime = performance.now();
    this.peak = rssBytes(this.pid) || 0;
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, rssBytes(this.pid) || 0);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): ProcessUsage {
    clearInterval(this.timer);
    this.timer = undefined;
    const seconds = (performance.now() - this.startTime) / 1000;
    const end = rssBytes(this.pid) || 0;
    return {
      cpuPercent: ((cpuSeconds(this.pid) - this.startCpu) / seconds) * 100,
      rssPeakBytes: Math.max(this.peak, end),
      rssEndBytes: end,
    };
  }
}
