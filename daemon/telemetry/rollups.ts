/**
 * Rollups: per (minute | hour, model, version) request counts, errors, latency histogram and attributed energy.
 * The recorder adds every batch of requests to its minute rows in the same transaction as the raw rows, so the
 * rollups always account for exactly the requests written; retention later merges old minutes into hours.
 */
import type { RequestRecord } from './sink.ts';
import type { TelemetryDb } from './schema.ts';
import { LatencyHistogram } from './histogram.ts';

export type RollupResolution = 'minute' | 'hour';

export const BUCKET_MS: Record<RollupResolution, number> = { minute: 60_000, hour: 3_600_000 };

export function bucketStart(at: number, resolution: RollupResolution): number {
  return Math.floor(at / BUCKET_MS[resolution]) * BUCKET_MS[resolution];
}

export interface RollupDelta {
  resolution: RollupResolution;
  bucket: number;
  model: string;
  version: string;
  engine: string;
  count: number;
  errors: number;
  items: number;
  sumQueueMs: number;
  sumComputeMs: number;
  sumTotalMs: number;
  maxTotalMs: number;
  hist: LatencyHistogram;
  energyJ: number;
  energyInferences: number;
}

export function emptyDelta(resolution: RollupResolution, bucket: number, model: string, version: string, engine = ''): RollupDelta {
  return {
    resolution, bucket, model, version, engine,
    count: 0, errors: 0, items: 0, sumQueueMs: 0, sumComputeMs: 0, sumTotalMs: 0, maxTotalMs: 0,
    hist: new LatencyHistogram(), energyJ: 0, energyInferences: 0,
  };
}

/** Accumulates deltas keyed by (resolution, bucket, model, version). */
export class RollupAccumulator {
  readonly deltas = new Map<string, RollupDelta>();

  entry(resolution: RollupResolution, at: number, model: string, version: string): RollupDelta {
    const bucket = bucketStart(at, resolution);
    const key = `${resolution}\u0000${bucket}\u0000${model}\u0000${version}`;
    let delta = this.deltas.get(key);
    if (!delta) {
      delta = emptyDelta(resolution, bucket, model, version);
      this.deltas.set(key, delta);
    }
    return delta;
  }

  addRequest(r: RequestRecord): void {
    const d = this.entry('minute', r.at, r.model, r.version);
    d.engine = r.engine;
    d.count++;
    if (!r.ok) d.errors++;
    d.items += r.batchSize;
    d.sumQueueMs += r.queueMs;
    d.sumComputeMs += r.computeMs;
    d.sumTotalMs += r.totalMs;
    d.maxTotalMs = Math.max(d.maxTotalMs, r.totalMs);
    d.hist.add(r.totalMs);
  }

  addEnergy(at: number, model: string, version: string, energyJ: number, inferences: number): void {
    const d = this.entry('minute', at, model, version);
    d.energyJ += energyJ;
    d.energyInferences += inferences;
  }

  addRow(row: RollupRow, resolution: RollupResolution): void {
    const d = this.entry(resolution, row.bucket, row.model, row.version);
    mergeRowInto(d, row);
  }
}

export interface RollupRow {
  resolution: RollupResolution;
  bucket: number;
  model: string;
  version: string;
  engine: string;
  count: number;
  errors: number;
  items: number;
  sum_queue_ms: number;
  sum_compute_ms: number;
  sum_total_ms: number;
  max_total_ms: number;
  hist: string;
  energy_j: number;
  energy_inferences: number;
}

function mergeRowInto(d: RollupDelta, row: RollupRow): void {
  if (row.engine) d.engine = d.engine || row.engine;
  d.count += row.count;
  d.errors += row.errors;
  d.items += row.items;
  d.sumQueueMs += row.sum_queue_ms;
  d.sumComputeMs += row.sum_compute_ms;
  d.sumTotalMs += row.sum_total_ms;
  d.maxTotalMs = Math.max(d.maxTotalMs, row.max_total_ms);
  d.hist.merge(LatencyHistogram.decode(row.hist));
  d.energyJ += row.energy_j;
  d.energyInferences += row.energy_inferences;
}

/** Prepared statements for merging deltas into stored rows; create once per connection. */
export class RollupWriter {
  private readonly select;
  private readonly upsert;

  constructor(db: TelemetryDb) {
    this.select = db.prepare<[string, string, string, number], RollupRow>(
      'SELECT * FROM rollups WHERE resolution = ? AND model = ? AND version = ? AND bucket = ?');
    this.upsert = db.prepare(`INSERT OR REPLACE INTO rollups
      (resolution, bucket, model, version, engine, count, errors, items, sum_queue_ms, sum_compute_ms, sum_total_ms,
       max_total_ms, hist, p50_ms, p95_ms, p99_ms, energy_j, energy_inferences)
      VALUES (@resolution, @bucket, @model, @version, @engine, @count, @errors, @items, @sumQueueMs, @sumComputeMs,
       @sumTotalMs, @maxTotalMs, @hist, @p50, @p95, @p99, @energyJ, @energyInferences)`);
  }

  /** Merges each delta into its stored row (or creates it). Call inside a transaction. */
  apply(deltas: Iterable<RollupDelta>): void {
    for (const delta of deltas) {
      // The delta's own engine is the most recent one seen: it wins over the stored one.
      const merged = { ...delta, hist: new LatencyHistogram() };
      merged.hist.merge(delta.hist);
      const stored = this.select.get(delta.resolution, delta.model, delta.version, delta.bucket);
      if (stored) {
        mergeRowInto(merged, stored);
        merged.engine = delta.engine || stored.engine;
      }
      this.upsert.run({
        resolution: merged.resolution, bucket: merged.bucket, model: merged.model, version: merged.version,
        engine: merged.engine, count: merged.count, errors: merged.errors, items: merged.items,
        sumQueueMs: merged.sumQueueMs, sumComputeMs: merged.sumComputeMs, sumTotalMs: merged.sumTotalMs,
        maxTotalMs: merged.maxTotalMs, hist: merged.hist.encode(),
        p50: merged.hist.quantile(0.5), p95: merged.hist.quantile(0.95), p99: merged.hist.quantile(0.99),
        energyJ: merged.energyJ, energyInferences: merged.energyInferences,
      });
    }
  }
}
