/** Power in a telemetry window: per source availability, mean power and energy, and a time series. */
import type { TelemetryDb } from './schema.ts';
import type { PowerSummary } from './summary-types.ts';

interface SourceRow {
  source: string;
  samples: number;
  unavailable: number;
  energy_j: number | null;
  timed_ms: number | null;
  mean_watts: number | null;
}

export function powerSummary(db: TelemetryDb, since: number, until: number): PowerSummary {
  // Mean power is energy over the time that had readings; rows without energy (first reading of a source) are left out of both.
  const rows = db.prepare<unknown[], SourceRow>(`SELECT source, count(*) AS samples, sum(watts IS NULL) AS unavailable,
      sum(energy_j) AS energy_j, sum(CASE WHEN energy_j IS NOT NULL THEN interval_ms END) AS timed_ms, avg(watts) AS mean_watts
    FROM power_samples WHERE at > ? AND at <= ? GROUP BY source ORDER BY source`).all(since, until);
  const latest = db.prepare<unknown[], { watts: number | null; reason: string | null }>(`SELECT watts, reason FROM power_samples
    WHERE source = ? AND at > ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1`);
  const latestReason = db.prepare<unknown[], { reason: string }>(`SELECT reason FROM power_samples
    WHERE source = ? AND at <= ? AND watts IS NULL ORDER BY at DESC, id DESC LIMIT 1`);
  const sources = rows.map((r) => {
    const last = latest.get(r.source, since, until);
    const available = r.samples > r.unavailable;
    return {
      source: r.source,
      available,
      meanWatts: !available ? null : r.timed_ms ? (r.energy_j ?? 0) / (r.timed_ms / 1000) : r.mean_watts,
      energyJ: r.energy_j,
      latestWatts: last?.watts ?? null,
      samples: r.samples,
      unavailableSamples: r.unavailable,
      reason: r.unavailable > 0 ? latestReason.get(r.source, until)?.reason ?? null : null,
    };
  });
  const available = sources.some((s) => s.available);
  if (available) return { available, reason: null, sources };
  if (sources.length > 0) {
    return { available, reason: sources.map((s) => `${s.source}: ${s.reason ?? 'no reading'}`).join('; '), sources };
  }
  // The sampler writes an unavailable reading when it starts and when a reason changes, not every tick: the latest
  // one before the window still explains the silence.
  const before = db.prepare<unknown[], { source: string; reason: string }>(`SELECT source, reason FROM power_samples
    WHERE at <= ? AND watts IS NULL ORDER BY at DESC, id DESC LIMIT 1`).get(until);
  const anyReading = db.prepare<unknown[], { at: number }>('SELECT at FROM power_samples WHERE at <= ? AND watts IS NOT NULL ORDER BY at DESC LIMIT 1').get(until);
  if (before && (!anyReading || anyReading.at < since)) return { available, reason: `${before.source}: ${before.reason}`, sources };
  return { available, reason: 'no power readings in this window (is the power sampler running?)', sources };
}

export function powerSeries(db: TelemetryDb, since: number, until: number, bucketMs: number): { source: string; points: { at: number; watts: number }[] }[] {
  const rows = db.prepare<unknown[], { source: string; b: number; energy_j: number | null; timed_ms: number | null; mean_watts: number }>(`SELECT source,
      (at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS b, sum(energy_j) AS energy_j,
      sum(CASE WHEN energy_j IS NOT NULL THEN interval_ms END) AS timed_ms, avg(watts) AS mean_watts
    FROM power_samples WHERE at > ? AND at <= ? AND watts IS NOT NULL GROUP BY source, b ORDER BY source, b`).all(bucketMs, bucketMs, since, until);
  const series = new Map<string, { source: string; points: { at: number; watts: number }[] }>();
  for (const r of rows) {
    const s = series.get(r.source) ?? { source: r.source, points: [] };
    s.points.push({ at: r.b, watts: r.timed_ms ? (r.energy_j ?? 0) / (r.timed_ms / 1000) : r.mean_watts });
    series.set(r.source, s);
  }
  return [...series.values()];
}
