// How busy the whole machine was over a window: the benchmark shares two cores with whatever else
// runs here (other engineers' test suites), so every row records the CPU used by processes that
// are neither the server nor the generator. A large number means the row is noisy.

import { machineCpuSeconds } from "./proc.ts";

export class MachineSampler {
  private startCpu = 0;
  private startTime = 0;

  start(): void {
    this.startCpu = machineCpuSeconds();
    this.startTime = performance.now();
  }

  /** Average busy CPU of the whole machine since start(), percent of one core. */
  stop(): number {
    const seconds = (performance.now() - this.startTime) / 1000;
    return ((machineCpuSeconds() - this.startCpu) / seconds) * 100;
  }
}
