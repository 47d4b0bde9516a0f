import t from 'tap';
import { searchClipRatios } from '../../daemon/quant/clip-search.ts';
import { layerOutputError } from '../../daemon/quant/error-metrics.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { calibrationOf } from './helpers/layers.ts';
import { correlatedActivations, seededNormal } from './helpers/random.ts';

const [K, N] = [64, 32];
/** Heavy-tailed weights (Student t, 5 degrees of freedom): a few large values per slice, where clipping pays. */
function heavyTailed(count: number, seed: number): Float32Array {
  const normal = seededNormal(seed);
  return Float32Array.from({ length: count }, () => {
    let chi = 0;
    for (let i = 0; i < 5; i++) chi += normal() ** 2;
    return (0.05 * normal()) / Math.sqrt(chi / 5);
  });
}
const w = heavyTailed(K * N, 3);
const spec: QuantSpec = { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } };

t.test('clip search never does worse than RTN and clips heavy-tailed int4 groups', async (t) => {
  const plain = searchClipRatios(w, [K, N], spec);
  t.ok(plain.error <= plain.rtnError, `MSE ${plain.error.toExponential(3)} ≤ RTN ${plain.rtnError.toExponential(3)}`);
  t.ok(plain.error < plain.rtnError, 'clipping reduces the MSE of heavy-tailed weights');
  const perChannel = searchClipRatios(w, [K, N], { ...spec, granularity: { kind: 'channel', axis: 1 } });
  t.ok(perChannel.error < 0.9 * perChannel.rtnError, `per-channel int4: ${perChannel.error.toExponential(3)} vs RTN ${perChannel.rtnError.toExponential(3)}`);
  t.ok(Array.from(plain.clipRatio).some((r) => r < 1), 'some groups are clipped');
  const rtnMse = (() => {
    const d = dequantize(quantizeRtn(w, [K, N], spec));
    return d.reduce((s, v, i) => s + (v - w[i]!) ** 2, 0);
  })();
  t.ok(Math.abs(plain.rtnError - rtnMse) / rtnMse < 1e-9, 'rtnError is the RTN squared error');
  const again = dequantize(quantizeRtn(w, [K, N], spec, { clipRatio: plain.clipRatio }));
  t.same(Array.from(again), Array.from(dequantize(plain.quantized)), 'the ratios reproduce the result through quantizeRtn');
});

t.test('with calibration the weighted search lowers the output error below RTN', async (t) => {
  const x = correlatedActivations(512, K, 4);
  const calib = calibrationOf(x, 512, K);
  for (const weighting of ['hessian', 'meanAbs'] as const) {
    const result = searchClipRatios(w, [K, N], spec, { calib, layout: 'matmul', weighting });
    t.ok(result.error <= result.rtnError, `${weighting}: weighted error ${result.error.toExponential(3)} ≤ ${result.rtnError.toExponential(3)}`);
    const clipped = layerOutputError(w, dequantize(result.quantized), [K, N], calib, 'matmul').error;
    const rtn = layerOutputError(w, dequantize(quantizeRtn(w, [K, N], spec)), [K, N], calib, 'matmul').error;
    t.ok(clipped <= rtn, `${weighting}: output error ${clipped.toExponential(3)} ≤ RTN ${rtn.toExponential(3)}`);
  }
});

t.test('bad ratios, a missing layout or NaN weights fail with EDGERUN_ERR_COMPRESS', async (t) => {
  await expectEdgerunError(t, () => searchClipRatios(w, [K, N], spec, { ratios: [1.5], name: 'lin' }), 'EDGERUN_ERR_COMPRESS', /lin/, /\(0, 1\]/);
  const calib = calibrationOf(correlatedActivations(64, K, 1), 64, K);
  await expectEdgerunError(t, () => searchClipRatios(w, [K, N], spec, { calib, name: 'lin' }), 'EDGERUN_ERR_COMPRESS', /layout/);
  const bad = Float32Array.from(w);
  bad[9] = -Infinity;
  await expectEdgerunError(t, () => searchClipRatios(bad, [K, N], spec, { name: 'lin' }), 'EDGERUN_ERR_COMPRESS', /lin/, /-Infinity/);
});
