/**
 * The read side of telemetry: summaries for the CLI, the HTTP summary and the dashboard. Reads rollups (never the
 * raw request rows for percentiles), so the cost depends on the window's minutes and versions, not on traffic.
 */
import { LatencyHistogram } from './histogram.ts';
import { BUCKET_MS, bucketStart, type RollupRow } from './rollups.ts';
import type { TelemetryDb } from './schema.ts';
import { powerSummary, powerSeries } from './power-summary.ts';
import type { LatencyPoint, TelemetrySummary, VersionSummary } from './summary-types.ts';

export interface SummaryQuery {
  since: number;
  /** Defaults to now. */
  until?: number;
  model?: string;
  /** Upper bound on time-series points per line (default 120). */
  maxPoints?: number;
}

const NICE_BUCKETS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60_000);

export class TelemetryStore {
  constructor(readonly db: TelemetryDb) {}

  summary(query: SummaryQuery): TelemetrySummary {
    const until = query.until ?? Date.now();
    const since = Math.min(query.since, until);
    const model = query.model ?? null;
    const bucketMs = chooseBucket(until - since, query.maxPoints ?? 120);
    // A read transaction gives one consistent snapshot across the queries below while the recorder writes.
    return this.db.transaction(() => {
      const rollups = this.rollupRows(since, until, model);
      const { versions, latency } = this.versionSummaries(rollups, since, until, model, bucketMs);
      return {
        generatedAt: Date.now(), since, until, bucketMs, model,
        versions,
        power: powerSummary(this.db, since, until),
        series: { latency, power: powerSeries(this.db, since, until, bucketMs), shadow: this.shadowSeries(since, until, model, bucketMs) },
        events: this.events(since, until, model),
      };
    })();
  }

  private rollupRows(since: number, until: number, model: string | null): RollupRow[] {
    // A bucket belongs to the window when it overlaps it.
    return this.db.prepare<unknown[], RollupRow>(`SELECT * FROM rollups
      WHERE ((resolution = 'minute' AND bucket > ? - ${BUCKET_MS.minute}) OR (resolution = 'hour' AND bucket > ? - ${BUCKET_MS.hour}))
        AND bucket <= ? AND (? IS NULL OR model = ?)
      ORDER BY bucket`).all(since, since, until, model, model);
  }

  private versionSummaries(rows: RollupRow[], since: number, until: number, model: string | null, bucketMs: number) {
    interface Acc { row: Omit<VersionSummary, 'latencyMs' | 'accuracy' | 'errorCodes' | 'energy'>; hist: LatencyHistogram; sums: { total: number; queue: number; compute: number; max: number; energyJ: number; energyInferences: number }; points: Map<number, { count: number; errors: number; hist: LatencyHistogram }> }
    const byVersion = new Map<string, Acc>();
    const windowS = Math.max(1e-3, (until - since) / 1000);
    for (const r of rows) {
      const key = `${r.model}\u0000${r.version}`;
      let acc = byVersion.get(key);
      if (!acc) {
        acc = {
          row: { model: r.model, version: r.version, engine: r.engine, requests: 0, errors: 0, errorRate: null, items: 0, throughputPerS: 0, queueMsMean: null, computeMsMean: null },
          hist: new LatencyHistogram(), sums: { total: 0, queue: 0, compute: 0, max: 0, energyJ: 0, energyInferences: 0 }, points: new Map(),
        };
        byVersion.set(key, acc);
      }
      if (r.engine) acc.row.engine = r.engine;
      acc.row.requests += r.count;
      acc.row.errors += r.errors;
      acc.row.items += r.items;
      acc.sums.total += r.sum_total_ms;
      acc.sums.queue += r.sum_queue_ms;
      acc.sums.compute += r.sum_compute_ms;
      acc.sums.max = Math.max(acc.sums.max, r.max_total_ms);
      acc.sums.energyJ += r.energy_j;
      acc.sums.energyInferences += r.energy_inferences;
      const hist = LatencyHistogram.decode(r.hist);
      acc.hist.merge(hist);
      if (r.count > 0) {
        const at = Math.floor(r.bucket / bucketMs) * bucketMs;
        const point = acc.points.get(at) ?? { count: 0, errors: 0, hist: new LatencyHistogram() };
        point.count += r.count;
        point.errors += r.errors;
        point.hist.merge(hist);
        acc.points.set(at, point);
      }
    }
    for (const key of this.accuracyVersions(since, until, model)) {
      if (!byVersion.has(key.model + '\u0000' + key.version)) {
        byVersion.set(key.model + '\u0000' + key.version, {
          row: { model: key.model, version: key.version, engine: '', requests: 0, errors: 0, errorRate: null, items: 0, throughputPerS: 0, queueMsMean: null, computeMsMean: null },
          hist: new LatencyHistogram(), sums: { total: 0, queue: 0, compute: 0, max: 0, energyJ: 0, energyInferences: 0 }, points: new Map(),
        });
      }
    }
    const errorCodes = this.errorCodes(since, until, model);
    const versions: VersionSummary[] = [];
    const latency: { model: string; version: string; points: LatencyPoint[] }[] = [];
    for (const acc of [...byVersion.values()].sort((a, b) => compareVersions(a.row, b.row))) {
      const { row, hist, sums } = acc;
      const n = row.requests;
      versions.push({
        ...row,
        errorRate: n > 0 ? row.errors / n : null,
        throughputPerS: n / windowS,
        latencyMs: { p50: hist.quantile(0.5), p95: hist.quantile(0.95), p99: hist.quantile(0.99), mean: n > 0 ? sums.total / n : null, max: n > 0 ? sums.max : null },
        queueMsMean: n > 0 ? sums.queue / n : null,
        computeMsMean: n > 0 ? sums.compute / n : null,
        errorCodes: errorCodes.get(`${row.model}\u0000${row.version}`) ?? [],
        energy: sums.energyInferences > 0 || sums.energyJ > 0
          ? { joules: sums.energyJ, inferences: sums.energyInferences, perInferenceJ: sums.energyInferences > 0 ? sums.energyJ / sums.energyInferences : null }
          : null,
        accuracy: { gate: this.latestGate(row.model, row.version), shadow: this.shadow(row.model, row.version, since, until) },
      });
      if (acc.points.size > 0) {
        latency.push({
          model: row.model, version: row.version,
          points: [...acc.points.entries()].sort((a, b) => a[0] - b[0]).map(([at, p]) => ({
            at, count: p.count, errors: p.errors, p50: p.hist.quantile(0.5), p95: p.hist.quantile(0.95), p99: p.hist.quantile(0.99),
          })),
        });
      }
    }
    return { versions, latency };
  }

  private accuracyVersions(since: number, until: number, model: string | null): { model: string; version: string }[] {
    return this.db.prepare<unknown[], { model: string; version: string }>(`SELECT DISTINCT model, version FROM accuracy
      WHERE at > ? AND at <= ? AND (? IS NULL OR model = ?)`).all(since, until, model, model);
  }

  /** Counted over the same whole minutes as the rollups, so the codes add up to the errors shown beside them. */
  private errorCodes(since: number, until: number, model: string | null): Map<string, { code: string; count: number }[]> {
    const from = bucketStart(since, 'minute');
    const to = bucketStart(until, 'minute') + BUCKET_MS.minute;
    const rows = this.db.prepare<unknown[], { model: string; version: string; error: string; n: number }>(`SELECT model, version, error, count(*) AS n
      FROM requests WHERE ok = 0 AND at >= ? AND at < ? AND (? IS NULL OR model = ?)
      GROUP BY model, version, error ORDER BY n DESC, error`).all(from, to, model, model);
    const result = new Map<string, { code: string; count: number }[]>();
    for (const r of rows) {
      const key = `${r.model}\u0000${r.version}`;
      const list = result.get(key) ?? [];
      list.push({ code: r.error, count: r.n });
      result.set(key, list);
    }
    return result;
  }

  /** The latest gate of a version, however long ago: a gate runs once, when the version is installed. */
  private latestGate(model: string, version: string) {
    const row = this.db.prepare<unknown[], { at: number; agreement: number; samples: number }>(`SELECT at, agreement, samples FROM accuracy
      WHERE model = ? AND version = ? AND kind = 'gate' ORDER BY at DESC, id DESC LIMIT 1`).get(model, version);
    return row ?? null;
  }

  private shadow(model: string, version: string, since: number, until: number) {
    const row = this.db.prepare<unknown[], { agreed: number | null; samples: number | null; records: number }>(`SELECT sum(agreement * samples) AS agreed,
      sum(samples) AS samples, count(*) AS records FROM accuracy
      WHERE model = ? AND version = ? AND kind = 'shadow' AND at > ? AND at <= ?`).get(model, version, since, until)!;
    if (row.records === 0 || !row.samples) return null;
    const latest = this.db.prepare<unknown[], { baseline_version: string | null }>(`SELECT baseline_version FROM accuracy
      WHERE model = ? AND version = ? AND kind = 'shadow' AND at > ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1`).get(model, version, since, until);
    return { agreement: (row.agreed ?? 0) / row.samples, samples: row.samples, records: row.records, baselineVersion: latest?.baseline_version ?? null };
  }

  private shadowSeries(since: number, until: number, model: string | null, bucketMs: number) {
    const rows = this.db.prepare<unknown[], { model: string; version: string; b: number; agreed: number; samples: number }>(`SELECT model, version,
      (at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS b, sum(agreement * samples) AS agreed, sum(samples) AS samples FROM accuracy
      WHERE kind = 'shadow' AND at > ? AND at <= ? AND (? IS NULL OR model = ?) AND samples > 0
      GROUP BY model, version, b ORDER BY model, version, b`).all(bucketMs, bucketMs, since, until, model, model);
    const series = new Map<string, { model: string; version: string; points: { at: number; agreement: number; samples: number }[] }>();
    for (const r of rows) {
      const key = `${r.model}\u0000${r.version}`;
      const s = series.get(key) ?? { model: r.model, version: r.version, points: [] };
      s.points.push({ at: r.b, agreement: r.agreed / r.samples, samples: r.samples });
      series.set(key, s);
    }
    return [...series.values()];
  }

  private events(since: number, until: number, model: string | null) {
    const rows = this.db.prepare<unknown[], { at: number; kind: string; model: string | null; version: string | null; details: string | null }>(`SELECT at, kind,
      model, version, details FROM events WHERE at > ? AND at <= ? AND (? IS NULL OR model = ? OR model IS NULL)
      ORDER BY at DESC, id DESC LIMIT 200`).all(since, until, model, model);
    return rows.map((r) => ({ ...r, details: r.details === null ? null : parseDetails(r.details) }));
  }
}

function parseDetails(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : { value };
  } catch {
    return { text };
  }
}

function chooseBucket(windowMs: number, maxPoints: number): number {
  const wanted = windowMs / Math.max(1, maxPoints);
  return NICE_BUCKETS_MS.find((b) => b >= wanted) ?? NICE_BUCKETS_MS[NICE_BUCKETS_MS.length - 1];
}

/** By model name, then newest version first (dotted numeric versions compared part by part). */
function compareVersions(a: { model: string; version: string }, b: { model: string; version: string }): number {
  if (a.model !== b.model) return a.model < b.model ? -1 : 1;
  const pa = a.version.split('.').map(Number);
  const pb = b.version.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) return b.version.localeCompare(a.version);
    if (x !== y) return y - x;
  }
  return 0;
}
