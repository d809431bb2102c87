// Latency samples: a growable Float64Array (bounded, so a runaway run cannot exhaust memory) and
// the percentile summary the report shows.

/** Percentiles of a set of samples, milliseconds. */
export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

const MAX_SAMPLES = 8_000_000;

export class SampleBuffer {
  private data = new Float64Array(1024);
  length = 0;
  /** Samples not stored because the buffer was full (they still count in `seen`). */
  dropped = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      if (this.length >= MAX_SAMPLES) {
        this.dropped++;
        return;
      }
      const bigger = new Float64Array(Math.min(this.data.length * 2, MAX_SAMPLES));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  /** A copy of the samples, sized exactly (transferable to another thread). */
  toArray(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

/** Summarises samples from several buffers (e.g. one per worker). */
export function summarize(parts: Float64Array[]): Summary {
  const total = parts.reduce((n, part) => n + part.length, 0);
  if (total === 0) return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const all = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  all.sort();
  let sum = 0;
  for (const value of all) sum += value;
  const at = (q: number) => all[Math.min(total - 1, Math.floor(q * total))];
  return { count: total, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: all[total - 1], mean: sum / total };
}
