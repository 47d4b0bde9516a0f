import t from 'tap';
import { EntropyObserver, MinMaxObserver, PercentileObserver, activationQParams, MagnitudeHistogram } from '../../daemon/quant/observers.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { normalArray, seededUniform } from './helpers/random.ts';

/** 200k standard normal values in batches of 20k, with five outliers at ±500. */
function batchesWithOutliers(): Float32Array[] {
  return Array.from({ length: 10 }, (_, b) => {
    const batch = normalArray(20_000, 100 + b);
    if (b === 3) batch.set([500, -480, 510], 7);
    if (b === 8) batch.set([495, -505], 11);
    return batch;
  });
}

t.test('min-max reports the extremes over all batches', async (t) => {
  const observer = new MinMaxObserver();
  for (const batch of batchesWithOutliers()) observer.observe(batch);
  t.same(observer.range(), { min: -505, max: 510 });
});

t.test('the percentile observer ignores rare outliers', async (t) => {
  const observer = new PercentileObserver(99.99);
  for (const batch of batchesWithOutliers()) observer.observe(batch);
  const { min, max } = observer.range();
  // Standard normal: the 99.99th percentile is 3.72.
  t.ok(max > 3.2 && max < 4.3, `max ${max}`);
  t.ok(min < -3.2 && min > -4.3, `min ${min}`);
  const positive = new PercentileObserver(99);
  positive.observe(Float32Array.from({ length: 10_000 }, (_, i) => i / 10_000));
  const range = positive.range();
  t.ok(Math.abs(range.max - 0.99) < 0.002 && Math.abs(range.min - 0.01) < 0.002, `uniform [0,1): ${JSON.stringify(range)}`);
});

t.test('growing the histogram range re-bins old counts exactly', async (t) => {
  const histogram = new MagnitudeHistogram(8);
  histogram.add(Float32Array.of(0, 0.1, 0.5, 0.9, 1), () => true);
  t.same(Array.from(histogram.counts), [2, 0, 0, 1, 0, 0, 0, 2], 'the top sits just above the maximum: 1 lands in the last bin');
  histogram.add(Float32Array.of(3.5), () => true);
  t.ok(histogram.top > 4 && histogram.top < 4.0001, 'the range doubled twice');
  t.same(Array.from(histogram.counts), [3, 2, 0, 0, 0, 0, 1, 0], 'as if 0, 0.1, 0.5 | 0.9, 1 | 3.5 had been binned at width 0.5 from the start');
});

t.test('the entropy observer clips a long tail but keeps a compact distribution whole', async (t) => {
  const uniform = seededUniform(9);
  const longTail = new EntropyObserver();
  // Laplace-like bulk with a sparse exponential tail reaching ~40.
  longTail.observe(Float32Array.from({ length: 100_000 }, (_, i) => (i % 1000 === 0 ? 40 * uniform() : -Math.log(1 - uniform())) * (uniform() < 0.5 ? -1 : 1)));
  const clipped = longTail.range();
  t.ok(clipped.max < 20 && clipped.max > 4, `long tail clipped at ${clipped.max.toFixed(2)}`);
  t.equal(clipped.min, -clipped.max, 'symmetric threshold');
  const compact = new EntropyObserver();
  compact.observe(Float32Array.from({ length: 50_000 }, () => 2 * uniform() - 1));
  t.ok(compact.range().max > 0.9, `uniform [-1,1) kept nearly whole: ${compact.range().max.toFixed(3)}`);
});

t.test('QuantizeLinear parameters: zero exactly representable, symmetric int8 zero point 0', async (t) => {
  const u8 = activationQParams({ min: -1, max: 3 }, 'uint8');
  t.equal(u8.scale, Math.fround(4 / 255));
  t.ok(Number.isInteger(u8.zeroPoint) && u8.zeroPoint >= 0 && u8.zeroPoint <= 255);
  t.equal(Math.round(0 / u8.scale) + u8.zeroPoint - u8.zeroPoint, 0);
  const relu = activationQParams({ min: 0.5, max: 6 }, 'uint8');
  t.equal(relu.zeroPoint, 0, 'a positive range starts at 0');
  const i8 = activationQParams({ min: -2, max: 6 }, 'int8');
  t.ok(i8.zeroPoint >= -128 && i8.zeroPoint <= 127);
  t.ok(Math.abs((-128 - i8.zeroPoint) * i8.scale - -2) < i8.scale, 'qmin dequantizes near min');
  t.same(activationQParams({ min: -2, max: 6 }, 'int8', { symmetric: true }), { scale: Math.fround(6 / 127), zeroPoint: 0 });
  t.same(activationQParams({ min: 0, max: 0 }, 'uint8'), { scale: 1, zeroPoint: 0 });
});

t.test('observers reject NaN activations and empty observation with EDGERUN_ERR_CALIBRATION', async (t) => {
  await expectEdgerunError(t, () => new PercentileObserver(99.99, 2048, 'conv3 input').range(), 'EDGERUN_ERR_CALIBRATION', /conv3 input/, /no activation/);
  await expectEdgerunError(t, () => new EntropyObserver({ name: 'x' }).observe(Float32Array.of(1, NaN)), 'EDGERUN_ERR_CALIBRATION', /NaN/);
  await expectEdgerunError(t, () => new PercentileObserver(30), 'EDGERUN_ERR_CALIBRATION', /percentile 30/);
  await expectEdgerunError(t, () => new PercentileObserver(99, 7), 'EDGERUN_ERR_CALIBRATION', /bins 7/);
  await expectEdgerunError(t, () => new EntropyObserver({ bins: 100, levels: 128 }), 'EDGERUN_ERR_CALIBRATION', /100 bins for 128 levels/);
});
