import t from 'tap';
import { biasCorrection } from '../../daemon/quant/bias-correction.ts';
import { im2colRows } from '../../daemon/quant/calibration-stats.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { calibrationOf } from './helpers/layers.ts';
import { correlatedActivations, normalArray } from './helpers/random.ts';

const spec: QuantSpec = { bits: 4, scheme: 'asymmetric', granularity: { kind: 'channel', axis: 1 } };

/** Mean over rows of x·M for a MatMul [K, N]. */
function meanOutput(x: Float32Array, rows: number, m: Float32Array, k: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) for (let c = 0; c < n; c++) out[c]! += (x[r * k + j]! * m[j * n + c]!) / rows;
  return out;
}

t.test('bias correction removes the mean output shift of a quantized MatMul', async (t) => {
  const [k, n, rows] = [48, 16, 400];
  const x = correlatedActivations(rows, k, 2, { offset: 1.5 });
  const calib = calibrationOf(x, rows, k);
  const w = normalArray(k * n, 3, 0.1);
  const approx = dequantize(quantizeRtn(w, [k, n], spec));
  const delta = biasCorrection(w, approx, [k, n], calib, 'matmul');
  t.equal(delta.length, n);
  const reference = meanOutput(x, rows, w, k, n);
  const quantized = meanOutput(x, rows, approx, k, n);
  let before = 0;
  let after = 0;
  for (let c = 0; c < n; c++) {
    before = Math.max(before, Math.abs(quantized[c]! - reference[c]!));
    after = Math.max(after, Math.abs(quantized[c]! + delta[c]! - reference[c]!));
  }
  t.ok(before > 1e-3, `quantization shifts the mean output (by up to ${before.toExponential(2)})`);
  t.ok(after < 1e-5, `the corrected shift is ${after.toExponential(2)}`);
});

t.test('bias correction of a grouped conv uses each group’s mean im2col row, padding included', async (t) => {
  const dims = [1, 4, 6, 6];
  const input = normalArray(4 * 36, 5).map((v) => v + 2);
  const conv = { kernelShape: [3, 3] as [number, number], pads: [1, 1, 1, 1] as [number, number, number, number], group: 2 };
  const weightDims = [4, 2, 3, 3];
  const w = normalArray(4 * 18, 6, 0.2);
  const approx = dequantize(quantizeRtn(w, weightDims, { bits: 4, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } }));
  const groups = [0, 1].map((g) => im2colRows(input, dims, conv, g));
  const calibs = groups.map((g) => calibrationOf(g.rows, g.rowCount, g.features));
  const delta = biasCorrection(w, approx, weightDims, calibs, 'conv');
  for (let o = 0; o < 4; o++) {
    const { rows, rowCount, features } = groups[Math.floor(o / 2)]!;
    let shift = 0;
    for (let r = 0; r < rowCount; r++) for (let j = 0; j < features; j++) shift += (rows[r * features + j]! * (approx[o * features + j]! - w[o * features + j]!)) / rowCount;
    t.ok(Math.abs(shift + delta[o]!) < 1e-5, `output ${o}: shift ${shift.toExponential(2)} cancelled by ${delta[o]!.toExponential(2)}`);
  }
  const nanMean = { ...calibs[1]!, mean: Float64Array.from(calibs[1]!.mean, (v, j) => (j === 4 ? NaN : v)) };
  await expectEdgerunError(t, () => biasCorrection(w, approx, weightDims, [calibs[0]!, nanMean], 'conv', 'conv7'), 'EDGERUN_ERR_COMPRESS', /conv7 \(group 1\)/, /mean/, /NaN/);
  await expectEdgerunError(t, () => biasCorrection(w, approx, [4, 2, 3, 3], calibs.slice(0, 1).map((c) => ({ ...c, features: 9 })), 'conv', 'conv7'), 'EDGERUN_ERR_COMPRESS', /9 features/);
});
