/**
 * A compact, mergeable latency histogram: log-scale buckets with 32 per doubling, so any quantile read from it is
 * within about ±1.1 % of a recorded value. Rollups store one per (minute or hour, model, version), which keeps
 * percentiles over days of traffic cheap to compute and exact enough to act on; merging two minutes into an hour
 * is adding counts.
 */
const BUCKETS_PER_DOUBLING = 32;
/** Values at or below this (1 µs) share bucket 0. */
const MIN_MS = 0.001;
/** Caps the index so a garbage value (hours of latency) cannot grow a sparse map without bound. */
const MAX_INDEX = 40 * BUCKETS_PER_DOUBLING;

export class LatencyHistogram {
  /** bucket index → count */
  readonly counts = new Map<number, number>();
  total = 0;

  static bucketOf(ms: number): number {
    if (!(ms > MIN_MS)) return 0;
    return Math.min(MAX_INDEX, Math.floor(Math.log2(ms / MIN_MS) * BUCKETS_PER_DOUBLING) + 1);
  }

  /** The geometric middle of a bucket: the value reported for any sample that fell in it. */
  static valueOf(index: number): number {
    if (index <= 0) return MIN_MS;
    return MIN_MS * 2 ** ((index - 0.5) / BUCKETS_PER_DOUBLING);
  }

  add(ms: number, count = 1): void {
    const index = LatencyHistogram.bucketOf(ms);
    this.counts.set(index, (this.counts.get(index) ?? 0) + count);
    this.total += count;
  }

  merge(other: LatencyHistogram): void {
    for (const [index, count] of other.counts) this.counts.set(index, (this.counts.get(index) ?? 0) + count);
    this.total += other.total;
  }

  /** The q-quantile (0 < q <= 1) by the nearest-rank rule; null when empty. */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (const index of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(index)!;
      if (seen >= rank) return LatencyHistogram.valueOf(index);
    }
    return LatencyHistogram.valueOf(Math.max(...this.counts.keys()));
  }

  /** Stored as JSON `[index, count, index, count, …]` in ascending index order: readable with sqlite3 and small. */
  encode(): string {
    const flat: number[] = [];
    for (const index of [...this.counts.keys()].sort((x, y) => x - y)) flat.push(index, this.counts.get(index)!);
    return JSON.stringify(flat);
  }

  static decode(text: string | null | undefined): LatencyHistogram {
    const histogram = new LatencyHistogram();
    if (!text) return histogram;
    const flat = JSON.parse(text) as unknown;
    if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new TypeError('a latency histogram is a flat array of [index, count] pairs');
    for (let i = 0; i < flat.length; i += 2) {
      const index = flat[i];
      const count = flat[i + 1];
      if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || count < 0) throw new TypeError(`bad histogram pair [${index}, ${count}]`);
      histogram.counts.set(index, (histogram.counts.get(index) ?? 0) + count);
      histogram.total += count;
    }
    return histogram;
  }
}

/** The relative error bound of a quantile read from a histogram (half a bucket, in ratio terms). */
export const HISTOGRAM_RELATIVE_ERROR = 2 ** (0.5 / BUCKETS_PER_DOUBLING) - 1;
