// Latency recording and exact percentiles for benchmarks.
//
// Every sample is kept (a Float64Array that doubles as needed), so percentiles are
// exact order statistics, not histogram-bucket estimates.

export class LatencyRecorder {
  private buf: Float64Array;
  private n = 0;

  constructor(initialCapacity = 1 << 16) {
    this.buf = new Float64Array(Math.max(16, initialCapacity));
  }

  record(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** A sorted copy of the samples. */
  sorted(): Float64Array {
    return this.buf.slice(0, this.n).sort();
  }

  summary(): LatencySummary {
    return summarize(this.sorted());
  }
}

export interface LatencySummary {
  count: number;
  min_ms: number;
  mean_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
}

/** Nearest-rank percentile of ascending `sorted` (p in [0, 100]); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1]!;
}

export function summarize(sorted: ArrayLike<number>): LatencySummary {
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  const n = sorted.length;
  return {
    count: n,
    min_ms: n ? sorted[0]! : NaN,
    mean_ms: n ? sum / n : NaN,
    p50_ms: percentile(sorted, 50),
    p90_ms: percentile(sorted, 90),
    p99_ms: percentile(sorted, 99),
    p999_ms: percentile(sorted, 99.9),
    max_ms: n ? sorted[n - 1]! : NaN,
  };
}

/** Sorts plain numbers ascending (Array#sort compares as strings by default). */
export function sortNumbers(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Rounds to `digits` decimals for reporting. */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
