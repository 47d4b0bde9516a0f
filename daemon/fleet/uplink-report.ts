/**
 * Builds one TelemetryReport from the daemon's telemetry database: everything written since the previous report.
 *
 * "Since" is a cursor of row ids (requests, energy, power samples, accuracy), not a time window: a request is
 * recorded when it finishes but stamped with its arrival time, and the recorder writes in batches, so rows can
 * land behind a time cut. Ids only grow, so each row is counted in exactly one report. Retention deletes only old
 * rows, long after they were reported.
 *
 * Latency percentiles come from the same log-scale histogram as the daemon's own summaries (±1.1 %).
 */
import type { TelemetryReport } from './protocol.ts';
import { LatencyHistogram } from '../telemetry/histogram.ts';
import type { TelemetryDb } from '../telemetry/schema.ts';

export interface ReportCursor {
  /** Highest row ids already reported. */
  requests: number;
  energy: number;
  power: number;
  accuracy: number;
  /** When the previous report was built (the next report's windowStart), epoch ms. */
  at: number;
}

type ModelEntry = TelemetryReport['models'][number];

/** A cursor at the database's current end: the first report covers only what happens after the uplink starts. */
export function cursorAtEnd(db: TelemetryDb, now: number): ReportCursor {
  const max = (table: string) => (db.prepare(`SELECT coalesce(max(id), 0) AS id FROM ${table}`).get() as { id: number }).id;
  return { requests: max('requests'), energy: max('energy'), power: max('power_samples'), accuracy: max('accuracy'), at: now };
}

export function parseCursor(text: string | null): ReportCursor | null {
  if (text === null) return null;
  const value = JSON.parse(text) as Partial<ReportCursor>;
  const fields = ['requests', 'energy', 'power', 'accuracy', 'at'] as const;
  return fields.every((f) => Number.isSafeInteger(value[f])) ? value as ReportCursor : null;
}

export interface WindowTelemetry {
  models: ModelEntry[];
  next: ReportCursor;
}

/** Reads the rows after `cursor` (one read transaction: a consistent snapshot while the recorder writes). */
export function readWindow(db: TelemetryDb, cursor: ReportCursor, now: number): WindowTelemetry {
  return db.transaction(() => {
    const next = cursorAtEnd(db, now);
    const windowS = Math.max(1e-3, (now - cursor.at) / 1000);
    const entries = new Map<string, { entry: ModelEntry; hist: LatencyHistogram }>();
    const entryOf = (model: string, version: string) => {
      const key = `${model}\u0000${version}`;
      let found = entries.get(key);
      if (!found) {
        found = {
          entry: { name: model, version, requests: 0, errors: 0, throughputPerSec: 0, latencyMs: { p50: null, p95: null, p99: null }, powerWatts: null, energyPerInferenceJ: null, accuracy: null },
          hist: new LatencyHistogram(),
        };
        entries.set(key, found);
      }
      return found;
    };

    const requests = db.prepare<[number, number], { model: string; version: string; total_ms: number; ok: number }>(
      'SELECT model, version, total_ms, ok FROM requests WHERE id > ? AND id <= ?');
    for (const r of requests.iterate(cursor.requests, next.requests)) {
      const { entry, hist } = entryOf(r.model, r.version);
      entry.requests++;
      if (!r.ok) entry.errors++;
      hist.add(r.total_ms);
    }

    const energy = db.prepare<[number, number], { model: string; version: string; j: number; n: number }>(`SELECT model, version,
      sum(energy_j) AS j, sum(inferences) AS n FROM energy WHERE id > ? AND id <= ? GROUP BY model, version`).all(cursor.energy, next.energy);
    for (const e of energy) {
      if (e.n > 0) entryOf(e.model, e.version).entry.energyPerInferenceJ = e.j / e.n;
    }

    const shadow = db.prepare<[number, number], { model: string; version: string; agreed: number; samples: number }>(`SELECT model, version,
      sum(agreement * samples) AS agreed, sum(samples) AS samples FROM accuracy WHERE kind = 'shadow' AND id > ? AND id <= ? AND samples > 0
      GROUP BY model, version`).all(cursor.accuracy, next.accuracy);
    const shadowOf = new Map(shadow.map((s) => [`${s.model}\u0000${s.version}`, s.agreed / s.samples]));
    const latestGate = db.prepare<[string, string], { agreement: number }>(`SELECT agreement FROM accuracy
      WHERE model = ? AND version = ? AND kind = 'gate' ORDER BY at DESC, id DESC LIMIT 1`);
    for (const s of shadow) entryOf(s.model, s.version);

    const watts = devicePower(db, cursor.power, next.power);
    const models = [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, { entry, hist }]) => {
      entry.throughputPerSec = entry.requests / windowS;
      entry.latencyMs = { p50: hist.quantile(0.5), p95: hist.quantile(0.95), p99: hist.quantile(0.99) };
      entry.powerWatts = watts;
      entry.accuracy = shadowOf.get(key) ?? latestGate.get(entry.name, entry.version)?.agreement ?? null;
      return entry;
    });
    return { models, next };
  })();
}

/** The device's mean power over the window: each source's energy over the time it measured, summed over sources. */
function devicePower(db: TelemetryDb, after: number, upTo: number): number | null {
  const rows = db.prepare<[number, number], { j: number | null; ms: number | null }>(`SELECT sum(energy_j) AS j,
    sum(interval_ms) AS ms FROM power_samples WHERE id > ? AND id <= ? AND watts IS NOT NULL AND energy_j IS NOT NULL
    GROUP BY source`).all(after, upTo);
  const measured = rows.filter((r) => r.ms && r.ms > 0);
  if (measured.length === 0) return null;
  return measured.reduce((sum, r) => sum + (r.j ?? 0) / (r.ms! / 1000), 0);
}

/** The report for one window, ready to publish. */
export function buildReport(deviceId: string, seq: number, droppedTotal: number, cursor: ReportCursor, window: WindowTelemetry): TelemetryReport {
  return {
    protocol: 1,
    deviceId,
    seq,
    windowStart: new Date(cursor.at).toISOString(),
    windowEnd: new Date(window.next.at).toISOString(),
    ...(droppedTotal > 0 ? { dropped: droppedTotal } : {}),
    models: window.models,
  };
}
