/** Retention: raw rows age out into rollups, minutes into hours, power and shadow rows are downsampled; size limits. */
import path from 'node:path';
import t, { type Test } from 'tap';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { databaseBytes, runRetention, type RetentionPolicy } from '../../daemon/telemetry/retention.ts';
import { openTelemetryDb, type TelemetryDb } from '../../daemon/telemetry/schema.ts';
import { TelemetryStore } from '../../daemon/telemetry/store.ts';
import { request, rng, tempDir } from './telemetry-plans.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = Date.UTC(2025, 6, 20, 12, 0, 0);
const one = <T>(db: TelemetryDb, sql: string, ...params: unknown[]) => db.prepare(sql).get(...params) as T;

/** Three days of traffic every 20 s, power every 10 s, a shadow record every minute, an event per hour. */
function filled(t: Test) {
  const db = openTelemetryDb(path.join(tempDir(t), 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000, batchSize: 5000, maxQueue: 1_000_000 });
  t.teardown(() => { recorder.close(); db.close(); });
  const random = rng(3);
  const start = now - 3 * DAY;
  for (let at = start; at < now; at += 20_000) {
    recorder.recordRequest(request(at, 2 + random() * 20, { version: at < now - DAY ? '1' : '2', ok: random() > 0.02, error: 'EDGERUN_ERR_TIMEOUT' }));
  }
  for (let at = start + 10_000; at <= now; at += 10_000) {
    const outage = at > now - 2 * DAY - HOUR && at <= now - 2 * DAY;
    recorder.recordPower(outage
      ? { at, source: 'rapl:package-0', watts: null, reason: 'permission denied', energyJ: null, intervalMs: 10_000 }
      : { at, source: 'rapl:package-0', watts: 10, energyJ: 100, intervalMs: 10_000 });
  }
  for (let at = start; at < now; at += MINUTE) {
    recorder.recordAccuracy({ at, model: 'resnet', version: '2', kind: 'shadow', agreement: random() > 0.5 ? 1 : 0.5, samples: 4, baselineVersion: '1' });
  }
  for (let at = start; at < now; at += HOUR) recorder.recordEvent({ at, kind: 'probation_passed', model: 'resnet', version: '2' });
  recorder.flush();
  return { db, recorder };
}

const policy: RetentionPolicy = { rawMaxAgeMs: DAY, minuteMaxAgeMs: 2 * DAY, hourMaxAgeMs: 30 * DAY, eventsMaxAgeMs: 30 * DAY, maxBytes: 1 << 30 };

t.test('by age: raw rows go, rollups keep every request; minutes older than the limit become hours', async (t) => {
  const { db } = filled(t);
  const totalRequests = one<{ n: number }>(db, 'SELECT count(*) AS n FROM requests').n;
  const totalErrors = one<{ n: number }>(db, 'SELECT sum(1 - ok) AS n FROM requests').n;
  const before = new TelemetryStore(db).summary({ since: now - 3 * DAY - HOUR, until: now });
  const report = await runRetention(db, policy, now);

  t.equal(one<{ n: number }>(db, 'SELECT min(at) AS n FROM requests').n >= now - DAY, true, 'no raw request older than a day');
  t.equal(report.deletedRequests, totalRequests - one<{ n: number }>(db, 'SELECT count(*) AS n FROM requests').n);
  t.ok(report.deletedRequests > 8000);
  const rollups = one<{ count: number; errors: number }>(db, 'SELECT sum(count) AS count, sum(errors) AS errors FROM rollups');
  t.same(rollups, { count: totalRequests, errors: totalErrors }, 'every request is still counted');
  t.equal(one<{ n: number }>(db, `SELECT min(bucket) AS n FROM rollups WHERE resolution = 'minute'`).n >= now - 2 * DAY, true);
  t.equal(one<{ n: number }>(db, `SELECT count(*) AS n FROM rollups WHERE resolution = 'hour'`).n, 24, 'the oldest day as 24 hour rows');
  t.equal(report.mergedMinuteRollups, 24 * 60);

  const after = new TelemetryStore(db).summary({ since: now - 3 * DAY - HOUR, until: now });
  for (const v of before.versions) {
    const a = after.versions.find((x) => x.version === v.version)!;
    t.equal(a.requests, v.requests, `v${v.version}: same requests`);
    t.same(a.latencyMs, v.latencyMs, `v${v.version}: same percentiles: merging histograms loses nothing`);
  }
});

t.test('by age: power rows are downsampled with energy preserved, outages stay visible; shadow agreement is preserved', async (t) => {
  const { db } = filled(t);
  const energy = one<{ e: number }>(db, 'SELECT sum(energy_j) AS e FROM power_samples').e;
  const shadow = one<{ agreed: number; samples: number }>(db, `SELECT sum(agreement * samples) AS agreed, sum(samples) AS samples FROM accuracy`);
  const rawPower = one<{ n: number }>(db, 'SELECT count(*) AS n FROM power_samples').n;
  await runRetention(db, policy, now);
  t.equal(one<{ e: number }>(db, 'SELECT sum(energy_j) AS e FROM power_samples').e, energy, 'energy is summed, not lost');
  const byResolution = Object.fromEntries((db.prepare('SELECT resolution, count(*) AS n FROM power_samples GROUP BY resolution').all() as { resolution: string; n: number }[]).map((r) => [r.resolution, r.n]));
  t.ok(byResolution.raw < rawPower / 2 && byResolution.minute > 0 && byResolution.hour > 0, JSON.stringify(byResolution));
  const hourly = db.prepare(`SELECT watts, interval_ms FROM power_samples WHERE resolution = 'hour' AND watts IS NOT NULL LIMIT 3`).all();
  t.same(hourly, [{ watts: 10, interval_ms: HOUR }, { watts: 10, interval_ms: HOUR }, { watts: 10, interval_ms: HOUR }], 'an hour row: mean watts over the hour');
  const outage = db.prepare('SELECT reason, resolution FROM power_samples WHERE watts IS NULL').all();
  t.same(outage, [{ reason: 'permission denied', resolution: 'hour' }], 'the outage hour keeps one unavailable row with its reason');
  const after = one<{ agreed: number; samples: number }>(db, `SELECT sum(agreement * samples) AS agreed, sum(samples) AS samples FROM accuracy`);
  t.equal(after.samples, shadow.samples);
  t.ok(Math.abs(after.agreed - shadow.agreed) < 1e-9, 'weighted agreement preserved');
  t.equal(one<{ n: number }>(db, `SELECT count(*) AS n FROM accuracy WHERE resolution = 'hour'`).n, 48);
});

t.test('by age: old hour rollups, events and the newest power row of a silent source', async (t) => {
  const { db } = filled(t);
  await runRetention(db, { ...policy, hourMaxAgeMs: 2.5 * DAY, eventsMaxAgeMs: DAY }, now);
  t.equal(one<{ n: number }>(db, `SELECT count(*) AS n FROM rollups WHERE resolution = 'hour'`).n, 12);
  t.equal(one<{ n: number }>(db, 'SELECT count(*) AS n FROM events').n, 24);
  // A source that went silent long ago keeps its last word.
  db.prepare(`INSERT INTO power_samples (at, source, watts, reason, energy_j, interval_ms) VALUES (?, 'none', NULL, 'no power sensor found', NULL, 0)`).run(now - 100 * DAY);
  await runRetention(db, policy, now);
  t.same(db.prepare(`SELECT reason FROM power_samples WHERE source = 'none'`).all(), [{ reason: 'no power sensor found' }]);
});

t.test('by size: the oldest data goes first until the file fits, and totals survive in coarser rollups', async (t) => {
  const { db } = filled(t);
  const totalRequests = one<{ n: number }>(db, 'SELECT count(*) AS n FROM requests').n;
  await runRetention(db, policy, now);
  const sizeByAge = databaseBytes(db);
  const maxBytes = Math.floor(sizeByAge * 0.6);
  const report = await runRetention(db, { ...policy, maxBytes }, now);
  t.ok(report.sizeLimited);
  t.ok(report.sizeAfter <= maxBytes, `${report.sizeAfter} <= ${maxBytes} (was ${sizeByAge})`);
  t.equal(report.sizeAfter, databaseBytes(db));
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
  const counted = one<{ n: number }>(db, 'SELECT sum(count) AS n FROM rollups').n;
  t.equal(counted, totalRequests, 'raw rows and minutes went first: every request still counted in hour rollups');
});

t.test('by size: an impossible limit empties what it may but never loops forever', async (t) => {
  const { db } = filled(t);
  const report = await runRetention(db, { ...policy, maxBytes: 1 }, now);
  t.ok(report.sizeLimited);
  t.equal(one<{ n: number }>(db, 'SELECT count(*) AS n FROM requests').n, 0);
  t.ok(one<{ n: number }>(db, 'SELECT count(*) AS n FROM rollups').n > 0, 'the newest rollups are kept');
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
});
