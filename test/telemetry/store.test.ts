/** TelemetryStore.summary: percentiles, throughput, errors, accuracy, events, series, and the model filter. */
import path from 'node:path';
import t, { type Test } from 'tap';
import { HISTOGRAM_RELATIVE_ERROR, LatencyHistogram } from '../../daemon/telemetry/histogram.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb } from '../../daemon/telemetry/schema.ts';
import { TelemetryStore } from '../../daemon/telemetry/store.ts';
import { exactQuantile, request, rng, tempDir } from './telemetry-plans.ts';

const HOUR = 3_600_000;
const t0 = Date.UTC(2025, 2, 10, 9, 0, 0);

function filled(t: Test) {
  const db = openTelemetryDb(path.join(tempDir(t), 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
  t.teardown(() => { recorder.close(); db.close(); });
  const random = rng(7);
  const latencies: Record<string, number[]> = { '2': [], '3': [] };
  // One hour of traffic: version 2 for the first 40 minutes, version 3 after the swap; log-normal-ish latencies.
  for (let i = 0; i < 3600; i++) {
    const at = t0 + i * 1000;
    const version = i < 2400 ? '2' : '3';
    const base = version === '2' ? 8 : 5;
    const totalMs = base * Math.exp(random() * random() * 2.5);
    const ok = i % 97 !== 0;
    latencies[version].push(totalMs);
    recorder.recordRequest(request(at, totalMs, { version, ok, error: ok ? undefined : i % 2 ? 'EDGERUN_ERR_TIMEOUT' : 'EDGERUN_ERR_OVERLOADED' }));
  }
  recorder.recordRequest(request(t0 + 10_000, 3, { model: 'ocr', version: '1' }));
  recorder.recordEvent({ at: t0 + 2400_000, kind: 'swap', model: 'resnet', version: '3', details: { from: '2' } });
  recorder.recordEvent({ at: t0 + 10, kind: 'start' });
  recorder.recordEvent({ at: t0 + 20, kind: 'load', model: 'ocr', version: '1' });
  recorder.recordAccuracy({ at: t0 - 10 * HOUR, model: 'resnet', version: '3', kind: 'gate', agreement: 0.97, samples: 100 });
  recorder.recordAccuracy({ at: t0 + 2390_000, model: 'resnet', version: '3', kind: 'gate', agreement: 0.995, samples: 200 });
  recorder.recordAccuracy({ at: t0 + 2500_000, model: 'resnet', version: '3', kind: 'shadow', agreement: 1, samples: 30, baselineVersion: '2' });
  recorder.recordAccuracy({ at: t0 + 3000_000, model: 'resnet', version: '3', kind: 'shadow', agreement: 0.9, samples: 10, baselineVersion: '2' });
  recorder.flush();
  return { db, store: new TelemetryStore(db), latencies };
}

t.test('percentiles match the exact ones within the histogram bound; counts, errors and throughput are exact', async (t) => {
  const { store, latencies } = filled(t);
  const s = store.summary({ since: t0, until: t0 + HOUR });
  t.same(s.versions.map((v) => `${v.model}@${v.version}`), ['ocr@1', 'resnet@3', 'resnet@2'], 'by model, newest version first');
  for (const version of ['2', '3']) {
    const v = s.versions.find((x) => x.model === 'resnet' && x.version === version)!;
    const values = latencies[version];
    t.equal(v.requests, values.length);
    for (const [q, key] of [[0.5, 'p50'], [0.95, 'p95'], [0.99, 'p99']] as const) {
      const exact = exactQuantile(values, q);
      const got = v.latencyMs[key]!;
      t.ok(Math.abs(got - exact) / exact <= HISTOGRAM_RELATIVE_ERROR + 1e-9, `v${version} ${key}: ${got.toFixed(3)} vs exact ${exact.toFixed(3)}`);
    }
    t.ok(Math.abs(v.latencyMs.mean! - values.reduce((a, b) => a + b, 0) / values.length) < 1e-6, 'mean is exact');
    t.equal(v.latencyMs.max, Math.max(...values));
    t.equal(v.throughputPerS, values.length / 3600);
  }
  const v2 = s.versions.find((x) => x.version === '2')!;
  t.equal(v2.errors, 25, 'every 97th request of the first 2400 failed');
  t.same(v2.errorCodes, [{ code: 'EDGERUN_ERR_OVERLOADED', count: 13 }, { code: 'EDGERUN_ERR_TIMEOUT', count: 12 }], 'the codes add up to the errors');
  t.equal(v2.engine, 'onnxruntime-cpu');
});

t.test('accuracy: the latest gate whenever it ran, shadow agreement weighted by samples in the window', async (t) => {
  const { store } = filled(t);
  const v3 = store.summary({ since: t0, until: t0 + HOUR }).versions.find((x) => x.version === '3')!;
  t.same(v3.accuracy.gate, { at: t0 + 2390_000, agreement: 0.995, samples: 200 });
  t.same(v3.accuracy.shadow, { agreement: (30 + 9) / 40, samples: 40, records: 2, baselineVersion: '2' });
  const before = store.summary({ since: t0, until: t0 + 2450_000 }).versions.find((x) => x.version === '3')!;
  t.equal(before.accuracy.shadow, null, 'no shadow samples before 2500 s');
});

t.test('series: latency points per version in whole buckets, shadow points, events newest first', async (t) => {
  const { store } = filled(t);
  const s = store.summary({ since: t0, until: t0 + HOUR, maxPoints: 60 });
  t.equal(s.bucketMs, 60_000);
  const v2 = s.series.latency.find((l) => l.version === '2')!;
  const v3 = s.series.latency.find((l) => l.version === '3')!;
  t.equal(v2.points.length, 40);
  t.equal(v3.points.length, 20);
  t.equal(v2.points.reduce((n, p) => n + p.count, 0), 2400);
  t.ok(v2.points.every((p) => p.p50! <= p.p95! && p.p95! <= p.p99!), 'p50 ≤ p95 ≤ p99 in every point');
  t.same(s.series.shadow, [{ model: 'resnet', version: '3', points: [{ at: t0 + 2460_000, agreement: 1, samples: 30 }, { at: t0 + 3000_000, agreement: 0.9, samples: 10 }] }]);
  t.same(s.events.map((e) => e.kind), ['swap', 'load', 'start']);
  t.same(s.events[0].details, { from: '2' });
  const wide = store.summary({ since: t0 - 24 * HOUR, until: t0 + HOUR });
  t.equal(wide.bucketMs, 15 * 60_000, 'a day fits 120 points of 15 minutes');
});

t.test('the model filter keeps that model and global events only', async (t) => {
  const { store } = filled(t);
  const s = store.summary({ since: t0, until: t0 + HOUR, model: 'ocr' });
  t.same(s.versions.map((v) => v.version), ['1']);
  t.same(s.events.map((e) => e.kind), ['load', 'start']);
  t.same(store.summary({ since: t0, until: t0 + HOUR, model: 'nope' }).versions, []);
});

t.test('histograms encode, decode and merge without losing counts', async (t) => {
  const h = new LatencyHistogram();
  for (const v of [0, 0.0005, 1, 1, 2, 1e9]) h.add(v);
  const back = LatencyHistogram.decode(h.encode());
  t.equal(back.total, 6);
  t.same([...back.counts.entries()].sort((a, b) => a[0] - b[0]), [...h.counts.entries()].sort((a, b) => a[0] - b[0]));
  back.merge(h);
  t.equal(back.total, 12);
  t.equal(new LatencyHistogram().quantile(0.5), null);
  t.throws(() => LatencyHistogram.decode('[1,2,3]'), /pairs/);
});
