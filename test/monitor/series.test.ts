/** Chart series from stored report rows: bucket width, request-weighted percentiles and energy, means, gaps. */
import t from 'tap';
import { buildSeries, chooseBucketMs } from '../../daemon/monitor/series.ts';
import type { TelemetryRow } from '../../daemon/monitor/store-types.ts';

const row = (over: Partial<TelemetryRow>): TelemetryRow => ({
  deviceId: 'a', seq: 1, at: 1_000_000, windowMs: 1000, model: 'det', version: '1', requests: 10, errors: 0, throughputPerSec: 10,
  p50: 10, p95: 20, p99: 30, powerWatts: 5, energyPerInferenceJ: 0.5, accuracy: 0.9, ...over,
});

t.test('the bucket is the smallest round width that keeps a line within maxPoints', async (t) => {
  t.equal(chooseBucketMs(60_000, 120), 1000);
  t.equal(chooseBucketMs(15 * 60_000, 120), 10_000);
  t.equal(chooseBucketMs(3_600_000, 120), 30_000);
  t.equal(chooseBucketMs(7 * 86_400_000, 120), 7_200_000);
  t.equal(chooseBucketMs(400 * 86_400_000, 120), 86_400_000, 'a day at most');
});

t.test('a bucket weights percentiles and energy by requests and averages power and accuracy', async (t) => {
  const rows = [
    row({ seq: 1, at: 1_000_100, requests: 30, p50: 10, p95: 20, p99: 40, energyPerInferenceJ: 1, powerWatts: 4, accuracy: 1 }),
    row({ seq: 2, at: 1_000_900, requests: 10, p50: 30, p95: 40, p99: 80, energyPerInferenceJ: 3, powerWatts: 6, accuracy: null }),
    row({ seq: 3, at: 1_000_500, requests: 0, p50: null, p95: null, p99: null, energyPerInferenceJ: null, powerWatts: null, accuracy: 0.8 }),
  ];
  const s = buildSeries(rows, 'device', 1_000_000 - 60_000, 1_000_000 + 1000, 120);
  t.equal(s.bucketMs, 1000);
  t.same(s.series.map((l) => l.key), ['a']);
  t.same(s.series[0].points, [{ at: 1_000_000, requests: 40, errors: 0, p50: 15, p95: 25, p99: 50, powerWatts: 5, energyPerInferenceJ: 1.5, accuracy: 0.9 }]);
});

t.test('lines are per device or per model version, sorted, with nulls where nothing was reported', async (t) => {
  const rows = [
    row({ deviceId: 'b', model: 'rec', version: '2', at: 1_002_000 }),
    row({ deviceId: 'a', at: 1_000_000 }),
    row({ deviceId: 'a', at: 1_005_000, powerWatts: null, p50: null, p95: null, p99: null }),
  ];
  const byModel = buildSeries(rows, 'model', 990_000, 1_010_000, 120);
  t.same(byModel.series.map((l) => [l.key, l.points.length]), [['det@1', 2], ['rec@2', 1]]);
  const late = byModel.series[0].points[1];
  t.match(late, { p50: null, p99: null, powerWatts: null, requests: 10 });
  const byDevice = buildSeries(rows, 'device', 990_000, 1_010_000, 120);
  t.same(byDevice.series.map((l) => l.key), ['a', 'b']);
});
