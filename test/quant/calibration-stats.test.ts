import t from 'tap';
import { LayerStatsAccumulator, im2colRows, type ConvGeometry } from '../../daemon/quant/calibration-stats.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { normalArray } from './helpers/random.ts';

t.test('the accumulator builds H = Σ xᵀx, mean and mean |x| over batches', async (t) => {
  const k = 37;
  const a = normalArray(50 * k, 1);
  const b = normalArray(45 * k, 2);
  const accumulator = new LayerStatsAccumulator(k);
  accumulator.addRows(a, 50);
  accumulator.addRows(b, 45);
  const stats = accumulator.result();
  t.equal(stats.rows, 95);
  t.equal(stats.features, k);
  const all = new Float32Array([...a, ...b]);
  let worst = 0;
  let worstMean = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < 95; r++) s += all[r * k + i]! * all[r * k + j]!;
      worst = Math.max(worst, Math.abs(s - stats.hessian[i * k + j]!));
    }
    let sum = 0;
    let sumAbs = 0;
    for (let r = 0; r < 95; r++) {
      sum += all[r * k + i]!;
      sumAbs += Math.abs(all[r * k + i]!);
    }
    worstMean = Math.max(worstMean, Math.abs(stats.mean[i]! - sum / 95), Math.abs(stats.meanAbs[i]! - sumAbs / 95));
  }
  t.ok(worstMean < 1e-12, `mean and mean |x| match (worst ${worstMean})`);
  t.ok(worst < 1e-9, `H matches the direct sum (worst ${worst})`);
});

t.test('rows beyond the per-call cap are subsampled evenly for H; means use every row', async (t) => {
  const k = 4;
  const x = Float32Array.from({ length: 10 * k }, (_, i) => Math.floor(i / k));
  const accumulator = new LayerStatsAccumulator(k, { maxRowsPerCall: 5 });
  accumulator.addRows(x, 10);
  const stats = accumulator.result();
  t.equal(stats.rows, 5);
  t.equal(accumulator.rowsSeen, 10);
  t.equal(stats.hessian[0], 0 + 4 + 16 + 36 + 64, 'rows 0, 2, 4, 6, 8');
  t.equal(stats.mean[0], 4.5);
  const defaultCap = new LayerStatsAccumulator(1500);
  const big = new Float32Array(300 * 1500).fill(1);
  defaultCap.addRows(big, 300);
  t.equal(defaultCap.result().rows, 256, 'wide layers fold at most 256 rows per call into H by default');
});

t.test('bad activations fail with EDGERUN_ERR_CALIBRATION naming the input', async (t) => {
  const accumulator = new LayerStatsAccumulator(3, { name: 'calib/x/0.npy' });
  await expectEdgerunError(t, () => accumulator.result(), 'EDGERUN_ERR_CALIBRATION', /calib\/x\/0\.npy/, /no calibration rows/);
  await expectEdgerunError(t, () => accumulator.addRows(new Float32Array(5), 2), 'EDGERUN_ERR_CALIBRATION', /5 values/);
  await expectEdgerunError(t, () => accumulator.addRows(Float32Array.of(1, 2, NaN), 1), 'EDGERUN_ERR_CALIBRATION', /calib\/x\/0\.npy/, /NaN/, /feature 2/);
});

/** Direct convolution (no bias) for checking im2col. */
function convReference(input: Float32Array, [n, c, h, w]: number[], weight: Float32Array, m: number, conv: Required<ConvGeometry>): { out: Float32Array; oh: number; ow: number } {
  const [kh, kw] = conv.kernelShape;
  const cg = c / conv.group;
  const oh = Math.floor((h + conv.pads[0] + conv.pads[2] - conv.dilations[0] * (kh - 1) - 1) / conv.strides[0]) + 1;
  const ow = Math.floor((w + conv.pads[1] + conv.pads[3] - conv.dilations[1] * (kw - 1) - 1) / conv.strides[1]) + 1;
  const out = new Float32Array(n! * m * oh * ow);
  for (let b = 0; b < n!; b++)
    for (let o = 0; o < m; o++) {
      const g = Math.floor(o / (m / conv.group));
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++) {
          let s = 0;
          for (let ci = 0; ci < cg; ci++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * conv.strides[0] - conv.pads[0] + ky * conv.dilations[0];
                const ix = x * conv.strides[1] - conv.pads[1] + kx * conv.dilations[1];
                if (iy < 0 || iy >= h! || ix < 0 || ix >= w!) continue;
                s += input[((b * c! + g * cg + ci) * h! + iy) * w! + ix]! * weight[((o * cg + ci) * kh + ky) * kw + kx]!;
              }
          out[((b * m + o) * oh + y) * ow + x] = s;
        }
    }
  return { out, oh, ow };
}

t.test('im2col rows times the weight reproduce the convolution, with pads, strides, dilations and groups', async (t) => {
  const dims = [2, 6, 7, 9];
  const input = normalArray(2 * 6 * 7 * 9, 3);
  const conv: Required<ConvGeometry> = { kernelShape: [3, 2], strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], group: 3 };
  const m = 6;
  const cg = 2;
  const weight = normalArray(m * cg * 3 * 2, 4);
  const { out, oh, ow } = convReference(input, dims, weight, m, conv);
  let worst = 0;
  for (let g = 0; g < 3; g++) {
    const { rows, rowCount, features } = im2colRows(input, dims, conv, g);
    t.equal(features, cg * 6);
    t.equal(rowCount, 2 * oh * ow);
    for (let r = 0; r < rowCount; r++) {
      const [b, y, x] = [Math.floor(r / (oh * ow)), Math.floor(r / ow) % oh, r % ow];
      for (let o = g * 2; o < g * 2 + 2; o++) {
        let s = 0;
        for (let j = 0; j < features; j++) s += rows[r * features + j]! * weight[o * features + j]!;
        worst = Math.max(worst, Math.abs(s - out[((b * m + o) * oh + y) * ow + x]!));
      }
    }
  }
  t.ok(worst < 1e-5, `worst difference ${worst}`);
  const capped = im2colRows(input, dims, conv, 0, { maxRows: 10 });
  t.equal(capped.rowCount, 10);
  await expectEdgerunError(t, () => im2colRows(input, [2, 6, 7], conv, 0, { name: 'x.npy' }), 'EDGERUN_ERR_CALIBRATION', /x\.npy/, /NCHW/);
  await expectEdgerunError(t, () => im2colRows(input, dims, conv, 3), 'EDGERUN_ERR_CALIBRATION', /group 3 of 3/);
});
