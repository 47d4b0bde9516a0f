import t from 'tap';
import { layerOutputError } from '../../daemon/quant/error-metrics.ts';
import { quantizeGptq } from '../../daemon/quant/gptq.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { calibrationOf, directMatmulError } from './helpers/layers.ts';
import { correlatedActivations, normalArray } from './helpers/random.ts';

const [K, N, ROWS] = [40, 24, 600];
const x = correlatedActivations(ROWS, K, 7);
const calib = calibrationOf(x, ROWS, K);
const w = normalArray(K * N, 8, 0.1);
const spec: QuantSpec = { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } };

t.test('the statistics-based output error equals ‖X(W − Wq)‖²/rows computed from the activations', async (t) => {
  const approx = dequantize(quantizeRtn(w, [K, N], spec));
  const metric = layerOutputError(w, approx, [K, N], calib, 'matmul');
  const direct = directMatmulError(x, ROWS, w, approx, K, N);
  t.ok(Math.abs(metric.error - direct) / direct < 1e-6, `${metric.error} vs ${direct}`);
  const energy = directMatmulError(x, ROWS, w, new Float32Array(K * N), K, N);
  t.ok(Math.abs(metric.reference - energy) / energy < 1e-6);
  t.equal(metric.relative, metric.error / metric.reference);
  t.equal(layerOutputError(w, w, [K, N], calib, 'matmul').error, 0);
});

t.test('GPTQ’s gain holds on held-out activations from the same distribution', async (t) => {
  // Same seed, twice the rows: the same feature mixing, and rows ROWS.. are ones the calibration never saw.
  const fresh = correlatedActivations(2 * ROWS, K, 7).subarray(ROWS * K);
  const rtn = directMatmulError(fresh, ROWS, w, dequantize(quantizeRtn(w, [K, N], spec)), K, N);
  const gptq = directMatmulError(fresh, ROWS, w, dequantize(quantizeGptq(w, [K, N], spec, calib, { layout: 'matmul' })), K, N);
  t.ok(gptq < 0.8 * rtn, `held-out: GPTQ ${gptq.toExponential(3)} vs RTN ${rtn.toExponential(3)}`);
});

t.test('a NaN approximation or a wrong-size one fails naming the tensor', async (t) => {
  const approx = new Float32Array(K * N).fill(NaN);
  await expectEdgerunError(t, () => layerOutputError(w, approx, [K, N], calib, 'matmul', 'fc1'), 'EDGERUN_ERR_COMPRESS', /fc1/, /NaN/);
  await expectEdgerunError(t, () => layerOutputError(w, new Float32Array(3), [K, N], calib, 'matmul', 'fc1'), 'EDGERUN_ERR_COMPRESS', /fc1/);
});
