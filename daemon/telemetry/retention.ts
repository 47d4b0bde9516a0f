/**
 * Retention by age and by size.
 *
 * By age: raw request and energy rows older than rawMaxAge are deleted (the minute rollups already account for
 * them: the recorder writes both in one transaction); minute rollups older than minuteMaxAge are merged into hour
 * rollups and deleted; hour rollups older than hourMaxAge are deleted. Power samples and shadow accuracy rows are
 * downsampled in place (raw → minute → hour, then deleted) on the same schedule. Events and gate results are
 * small and kept for eventsMaxAge. The newest power row of each source is always kept: it says why power is
 * unavailable when a sensor has been silent for months.
 *
 * By size: when the file is still over maxBytes, the oldest data goes first, coarsest last: raw rows, then minute
 * rollups (merged into hours), then hour rollups and events, a quarter of the oldest at a time, until it fits.
 * Freed pages go back to the filesystem by incremental vacuum (the schema is created with auto_vacuum=INCREMENTAL).
 *
 * Deletes run in chunks with a turn of the event loop between them, so a daemon serving requests is not stalled.
 */
import fs from 'node:fs';
import { BUCKET_MS, bucketStart, RollupAccumulator, RollupWriter, type RollupRow } from './rollups.ts';
import type { TelemetryDb } from './schema.ts';

export interface RetentionPolicy {
  rawMaxAgeMs: number;
  minuteMaxAgeMs: number;
  hourMaxAgeMs: number;
  eventsMaxAgeMs: number;
  /** Upper bound on the database file (main file + WAL) in bytes. */
  maxBytes: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  rawMaxAgeMs: 24 * 3_600_000,
  minuteMaxAgeMs: 7 * 86_400_000,
  hourMaxAgeMs: 400 * 86_400_000,
  eventsMaxAgeMs: 400 * 86_400_000,
  maxBytes: 256 * 1024 * 1024,
};

export interface RetentionReport {
  deletedRequests: number;
  mergedMinuteRollups: number;
  deletedHourRollups: number;
  downsampledPowerRows: number;
  downsampledShadowRows: number;
  deletedEvents: number;
  sizeBefore: number;
  sizeAfter: number;
  /** True when size pressure removed data younger than the age limits. */
  sizeLimited: boolean;
}

const CHUNK = 5000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function runRetention(db: TelemetryDb, policy: RetentionPolicy = DEFAULT_RETENTION, now = Date.now()): Promise<RetentionReport> {
  const report: RetentionReport = {
    deletedRequests: 0, mergedMinuteRollups: 0, deletedHourRollups: 0, downsampledPowerRows: 0, downsampledShadowRows: 0,
    deletedEvents: 0, sizeBefore: databaseBytes(db), sizeAfter: 0, sizeLimited: false,
  };
  await applyAgeLimits(db, policy, now, report);
  await reclaim(db);
  // Under size pressure, pretend the data is older than it is: each round removes the oldest quarter of the first
  // tier that still has something to give; a tier where a round changed nothing is passed over from then on.
  const exhausted = new Set<number>();
  const totalChanges = db.prepare<[], { n: number }>('SELECT total_changes() AS n').pluck();
  for (let round = 0; round < 60 && databaseBytes(db) > policy.maxBytes; round++) {
    report.sizeLimited = true;
    const cut = sizeCut(db, exhausted);
    if (cut === undefined) break;
    const before = totalChanges.get();
    await applyAgeLimits(db, cut.policy, cut.now, report);
    if (totalChanges.get() === before) exhausted.add(cut.tier);
    await reclaim(db);
  }
  report.sizeAfter = databaseBytes(db);
  return report;
}

async function applyAgeLimits(db: TelemetryDb, policy: RetentionPolicy, now: number, report: RetentionReport): Promise<void> {
  const rawCutoff = now - policy.rawMaxAgeMs;
  report.deletedRequests += await deleteInChunks(db, 'requests', rawCutoff);
  await deleteInChunks(db, 'energy', rawCutoff);
  report.downsampledPowerRows += downsamplePower(db, 'raw', 'minute', rawCutoff);
  report.downsampledShadowRows += downsampleShadow(db, rawCutoff);
  await yieldToEventLoop();

  const minuteCutoff = now - policy.minuteMaxAgeMs;
  report.mergedMinuteRollups += mergeMinutesIntoHours(db, minuteCutoff);
  report.downsampledPowerRows += downsamplePower(db, 'minute', 'hour', minuteCutoff);
  await yieldToEventLoop();

  const hourCutoff = now - policy.hourMaxAgeMs;
  report.deletedHourRollups += db.prepare(`DELETE FROM rollups WHERE resolution = 'hour' AND bucket + ${BUCKET_MS.hour} <= ?`).run(hourCutoff).changes;
  report.downsampledPowerRows += deleteOldPower(db, hourCutoff);
  db.prepare(`DELETE FROM accuracy WHERE kind = 'shadow' AND at < ?`).run(hourCutoff);
  const eventsCutoff = now - policy.eventsMaxAgeMs;
  report.deletedEvents += db.prepare('DELETE FROM events WHERE at < ?').run(eventsCutoff).changes;
  db.prepare(`DELETE FROM accuracy WHERE kind = 'gate' AND at < ?`).run(eventsCutoff);
  await yieldToEventLoop();
}

async function deleteInChunks(db: TelemetryDb, table: 'requests' | 'energy', cutoff: number): Promise<number> {
  const statement = db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE at < ? ORDER BY at LIMIT ${CHUNK})`);
  let total = 0;
  for (;;) {
    const { changes } = statement.run(cutoff);
    total += changes;
    if (changes < CHUNK) return total;
    await yieldToEventLoop();
  }
}

/** Minute rollups whose whole minute is older than the cutoff become part of their hour. */
function mergeMinutesIntoHours(db: TelemetryDb, cutoff: number): number {
  return db.transaction(() => {
    const rows = db.prepare<[number], RollupRow>(`SELECT * FROM rollups WHERE resolution = 'minute' AND bucket + ${BUCKET_MS.minute} <= ?`).all(cutoff);
    if (rows.length === 0) return 0;
    const hours = new RollupAccumulator();
    for (const row of rows) hours.addRow(row, 'hour');
    new RollupWriter(db).apply(hours.deltas.values());
    db.prepare(`DELETE FROM rollups WHERE resolution = 'minute' AND bucket + ${BUCKET_MS.minute} <= ?`).run(cutoff);
    return rows.length;
  })();
}

/**
 * Replaces the `from` rows older than the cutoff by one row per source and `to` bucket: energy summed, watts the
 * energy-weighted mean. Of the unavailable rows the newest per bucket stays (promoted to `to`), so outages and
 * their reasons remain visible.
 */
function downsamplePower(db: TelemetryDb, from: 'raw' | 'minute', to: 'minute' | 'hour', olderThan: number): number {
  const size = BUCKET_MS[to];
  // Whole buckets only; a row's 'at' is the end of its interval, so the bucket of (at - 1) holds it.
  const cutoff = bucketStart(olderThan, to);
  return db.transaction(() => {
    const old = `resolution = '${from}' AND at <= ? AND id NOT IN (${newestPowerRows(db)})`;
    const n = (db.prepare(`SELECT count(*) AS n FROM power_samples WHERE ${old}`).get(cutoff) as { n: number }).n;
    if (n === 0) return 0;
    const timedMs = 'sum(CASE WHEN energy_j IS NOT NULL THEN interval_ms END)';
    db.prepare(`INSERT INTO power_samples (at, source, watts, reason, energy_j, interval_ms, resolution)
      SELECT max(at), source, CASE WHEN ${timedMs} > 0 THEN sum(energy_j) / (${timedMs} / 1000.0) ELSE avg(watts) END,
        NULL, sum(energy_j), coalesce(${timedMs}, sum(interval_ms)), '${to}'
      FROM power_samples WHERE ${old} AND watts IS NOT NULL GROUP BY source, (at - 1) / ${size}`).run(cutoff);
    db.prepare(`UPDATE power_samples SET resolution = '${to}' WHERE id IN
      (SELECT max(id) FROM power_samples WHERE ${old} AND watts IS NULL GROUP BY source, (at - 1) / ${size})`).run(cutoff);
    db.prepare(`DELETE FROM power_samples WHERE ${old}`).run(cutoff);
    return n;
  })();
}

function deleteOldPower(db: TelemetryDb, cutoff: number): number {
  return db.prepare(`DELETE FROM power_samples WHERE at < ? AND id NOT IN (${newestPowerRows(db)})`).run(cutoff).changes;
}

function newestPowerRows(db: TelemetryDb): string {
  const ids = db.prepare<[], { id: number }>(`SELECT (SELECT id FROM power_samples p2 WHERE p2.source = p.source ORDER BY at DESC, id DESC LIMIT 1) AS id
    FROM power_samples p GROUP BY source`).all();
  return ids.map((r) => r.id).join(',') || '-1';
}

/** Shadow comparisons older than the cutoff become one row per hour and version (agreement weighted by samples). */
function downsampleShadow(db: TelemetryDb, olderThan: number): number {
  const cutoff = bucketStart(olderThan, 'hour');
  return db.transaction(() => {
    const old = `kind = 'shadow' AND resolution = 'raw' AND at < ?`;
    const n = (db.prepare(`SELECT count(*) AS n FROM accuracy WHERE ${old}`).get(cutoff) as { n: number }).n;
    if (n === 0) return 0;
    db.prepare(`INSERT INTO accuracy (at, model, version, kind, agreement, samples, baseline_version, resolution)
      SELECT max(at), model, version, 'shadow',
        CASE WHEN sum(samples) > 0 THEN sum(agreement * samples) / sum(samples) ELSE avg(agreement) END,
        sum(samples), max(baseline_version), 'hour'
      FROM accuracy WHERE ${old} GROUP BY model, version, at / ${BUCKET_MS.hour}`).run(cutoff);
    db.prepare(`DELETE FROM accuracy WHERE ${old}`).run(cutoff);
    return n;
  })();
}

/** A policy that removes more than the age limits would, for the size loop: each round cuts deeper. */
function sizeCut(db: TelemetryDb, exhausted: Set<number>): { tier: number; policy: RetentionPolicy; now: number } | undefined {
  const time = (sql: string) => (db.prepare(sql).get() as { t: number | null }).t;
  const tiers: { lo: string; hi: string; key: keyof RetentionPolicy }[] = [
    { lo: 'SELECT min(at) AS t FROM requests', hi: 'SELECT max(at) AS t FROM requests', key: 'rawMaxAgeMs' },
    { lo: `SELECT min(at) AS t FROM power_samples WHERE resolution = 'raw'`, hi: `SELECT max(at) AS t FROM power_samples WHERE resolution = 'raw'`, key: 'rawMaxAgeMs' },
    { lo: `SELECT min(bucket) AS t FROM rollups WHERE resolution = 'minute'`, hi: `SELECT max(bucket) + ${BUCKET_MS.minute} AS t FROM rollups WHERE resolution = 'minute'`, key: 'minuteMaxAgeMs' },
    { lo: `SELECT min(bucket) AS t FROM rollups WHERE resolution = 'hour'`, hi: `SELECT max(bucket) + ${BUCKET_MS.hour} AS t FROM rollups WHERE resolution = 'hour'`, key: 'hourMaxAgeMs' },
    { lo: 'SELECT min(at) AS t FROM events', hi: 'SELECT max(at) AS t FROM events', key: 'eventsMaxAgeMs' },
  ];
  for (const [index, tier] of tiers.entries()) {
    if (exhausted.has(index)) continue;
    const lo = time(tier.lo);
    const hi = time(tier.hi);
    if (lo === null || hi === null) continue;
    // The raw tier may be emptied entirely; rollups and events always keep their newest quarter.
    const span = hi - lo;
    const cutoff = tier.key === 'rawMaxAgeMs' && span < 1000 ? hi + 1 : lo + Math.max(1, Math.ceil(span / 4));
    if (tier.key !== 'rawMaxAgeMs' && cutoff >= hi) continue;
    const keepAll = Number.MAX_SAFE_INTEGER / 4;
    const policy: RetentionPolicy = { rawMaxAgeMs: keepAll, minuteMaxAgeMs: keepAll, hourMaxAgeMs: keepAll, eventsMaxAgeMs: keepAll, maxBytes: 0 };
    policy[tier.key] = 0;
    // With age 0 at time `cutoff`, everything at or before the cutoff in this tier goes.
    return { tier: index, policy, now: cutoff };
  }
  return undefined;
}

/** Returns freed pages to the filesystem and folds the WAL back into the main file. */
async function reclaim(db: TelemetryDb): Promise<void> {
  db.pragma('incremental_vacuum');
  db.pragma('wal_checkpoint(TRUNCATE)');
  await yieldToEventLoop();
}

/** Bytes the database occupies on disk: the main file and its WAL. */
export function databaseBytes(db: TelemetryDb): number {
  const size = (file: string) => {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  };
  return size(db.name) + size(`${db.name}-wal`);
}
