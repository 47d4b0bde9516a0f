/**
 * Chart series from stored telemetry rows: one line per device or per model version, points bucketed so a chart
 * has at most `maxPoints` of them. Percentiles from different reports cannot be merged exactly without their
 * histograms, so a bucket's p50/p95/p99 are the request-weighted means of the reports' own percentiles (the
 * reports' windows are short next to a bucket, and the dashboard shows trends, not SLO evidence). Energy per
 * inference is request-weighted too; power and accuracy are plain means over the reports that carry them.
 */
import type { TelemetryRow } from './store-types.ts';

export type SeriesBy = 'device' | 'model';

export interface SeriesPoint {
  at: number;
  requests: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  powerWatts: number | null;
  energyPerInferenceJ: number | null;
  accuracy: number | null;
}

export interface TelemetrySeries {
  by: SeriesBy;
  since: number;
  until: number;
  bucketMs: number;
  series: { key: string; points: SeriesPoint[] }[];
}

const NICE_BUCKETS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

export function chooseBucketMs(windowMs: number, maxPoints: number): number {
  const wanted = windowMs / Math.max(1, maxPoints);
  return NICE_BUCKETS_MS.find((b) => b >= wanted) ?? NICE_BUCKETS_MS[NICE_BUCKETS_MS.length - 1];
}

interface Acc {
  requests: number;
  errors: number;
  latencyWeight: number;
  p50: number; p95: number; p99: number;
  power: number; powerN: number;
  energy: number; energyWeight: number;
  accuracy: number; accuracyN: number;
}

const emptyAcc = (): Acc => ({ requests: 0, errors: 0, latencyWeight: 0, p50: 0, p95: 0, p99: 0, power: 0, powerN: 0, energy: 0, energyWeight: 0, accuracy: 0, accuracyN: 0 });

export function buildSeries(rows: TelemetryRow[], by: SeriesBy, since: number, until: number, maxPoints = 120): TelemetrySeries {
  const bucketMs = chooseBucketMs(until - since, maxPoints);
  const lines = new Map<string, Map<number, Acc>>();
  for (const r of rows) {
    const key = by === 'device' ? r.deviceId : `${r.model}@${r.version}`;
    const buckets = lines.get(key) ?? new Map<number, Acc>();
    lines.set(key, buckets);
    const at = Math.floor(r.at / bucketMs) * bucketMs;
    const a = buckets.get(at) ?? emptyAcc();
    buckets.set(at, a);
    a.requests += r.requests;
    a.errors += r.errors;
    if (r.p50 !== null && r.p95 !== null && r.p99 !== null && r.requests > 0) {
      a.latencyWeight += r.requests;
      a.p50 += r.p50 * r.requests;
      a.p95 += r.p95 * r.requests;
      a.p99 += r.p99 * r.requests;
    }
    if (r.powerWatts !== null) { a.power += r.powerWatts; a.powerN++; }
    if (r.energyPerInferenceJ !== null) {
      const weight = Math.max(1, r.requests);
      a.energy += r.energyPerInferenceJ * weight;
      a.energyWeight += weight;
    }
    if (r.accuracy !== null) { a.accuracy += r.accuracy; a.accuracyN++; }
  }
  const series = [...lines.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, buckets]) => ({
    key,
    points: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([at, a]): SeriesPoint => ({
      // The bucket's start, kept inside the window so the chart's axis holds it.
      at: Math.min(until, Math.max(since, at)),
      requests: a.requests,
      errors: a.errors,
      p50: a.latencyWeight > 0 ? a.p50 / a.latencyWeight : null,
      p95: a.latencyWeight > 0 ? a.p95 / a.latencyWeight : null,
      p99: a.latencyWeight > 0 ? a.p99 / a.latencyWeight : null,
      powerWatts: a.powerN > 0 ? a.power / a.powerN : null,
      energyPerInferenceJ: a.energyWeight > 0 ? a.energy / a.energyWeight : null,
      accuracy: a.accuracyN > 0 ? a.accuracy / a.accuracyN : null,
    })),
  }));
  return { by, since, until, bucketMs, series };
}
