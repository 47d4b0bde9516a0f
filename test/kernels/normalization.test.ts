/**
 * LayerNormalization (all three outputs), InstanceNormalization and RMSNormalization on the real adapter
 * (both row strategies) against onnxruntime.
 *
 * Error bound (u = 2^-24), per row of L elements with mean μ, 1/σ = rstd (computed here in float64):
 *  - the mean: each side within γ_L·Σ|x|/L of the exact value, so Δμ = 2·(L+1)·u·Σ|x|/L;
 *  - rstd: the sum of squared deviations is a sum of non-negative terms (relative γ_L; the mean's own error
 *    only enters at second order, Σ(x-μ̂)² = Σ(x-μ)² + L·Δμ²), then a division, an add and inverseSqrt
 *    (2 ulp in WGSL): relative ε = 2·(L+8)·u for both sides together;
 *  - y = (x - μ)·rstd·scale + b: |scale|·rstd·(Δμ + |x - μ|·ε) + 4·u·(|y| + |b|).
 * RMSNormalization has no mean: |scale|·|x|·rstd·ε + 4·u·|y|.
 */
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { intTensor, opContextFor, randomTensor, runBoth, type SingleOpCase } from '../helpers/kernel-harness.ts';

const U = 2 ** -24;

/** Element `j` of the normalized shape read from `t` broadcast to that shape (null t → fallback). */
function broadcastAt(t: Tensor | null, target: number[], j: number, fallback: number): number {
  if (!t) return fallback;
  const offset = target.length - t.dims.length;
  let rest = j;
  let index = 0;
  let stride = 1;
  for (let d = target.length - 1; d >= 0; d--) {
    const coord = rest % target[d];
    rest = Math.floor(rest / target[d]);
    const od = d - offset;
    if (od < 0) continue;
    if (t.dims[od] !== 1) index += coord * stride;
    stride *= t.dims[od];
  }
  return t.data[index];
}

interface RowBounds {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/**
 * Allowed deviations for rows of `rowLength` contiguous elements; `scaleAt(row, j)` / `biasAt(row, j)` give the
 * affine parameters of element j of a row.
 */
function rowBounds(x: Tensor, rowLength: number, epsilon: number, centred: boolean,
  scaleAt: (row: number, j: number) => number, biasAt: (row: number, j: number) => number, y: Tensor): RowBounds {
  const rows = x.data.length / rowLength;
  const L = rowLength;
  const out: RowBounds = { y: new Float64Array(x.data.length), mean: new Float64Array(rows), rstd: new Float64Array(rows) };
  const eps = 2 * (L + 8) * U;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    let abs = 0;
    for (let j = 0; j < L; j++) { sum += x.data[r * L + j]; abs += Math.abs(x.data[r * L + j]); }
    const mu = centred ? sum / L : 0;
    let sq = 0;
    for (let j = 0; j < L; j++) sq += (x.data[r * L + j] - mu) ** 2;
    const rstd = 1 / Math.sqrt(sq / L + epsilon);
    const dMu = centred ? 2 * (L + 1) * U * abs / L : 0;
    out.mean[r] = dMu;
    out.rstd[r] = rstd * eps;
    for (let j = 0; j < L; j++) {
      const i = r * L + j;
      out.y[i] = Math.abs(scaleAt(r, j)) * rstd * (dMu + Math.abs(x.data[i] - mu) * eps) + 4 * U * (Math.abs(y.data[i]) + Math.abs(biasAt(r, j)));
    }
  }
  return out;
}

function outside(actual: Tensor, expected: Tensor, allowed: Float64Array): string | null {
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] vs [${expected.dims}]`;
  for (let i = 0; i < expected.data.length; i++) {
    const diff = Math.abs(actual.data[i] - expected.data[i]);
    if (!(diff <= allowed[i])) return `element ${i}: ${actual.data[i]} vs ${expected.data[i]} (|diff| ${diff} > ${allowed[i]})`;
  }
  return null;
}

interface LayerNormCase {
  name: string;
  x: Tensor;
  axis: number;
  scale: number[];
  bias: number[] | null;
  outputs: number;
  epsilon?: number;
}

const LAYER_NORM_CASES: LayerNormCase[] = [
  { name: 'rec-like [1,40,120] over the last axis', x: randomTensor([1, 40, 120], 1), axis: -1, scale: [120], bias: [120], outputs: 1 },
  { name: 'Mean and InvStdDev outputs', x: randomTensor([2, 40, 120], 2), axis: -1, scale: [120], bias: [120], outputs: 3 },
  { name: 'Y and Mean only', x: randomTensor([3, 10], 3), axis: 1, scale: [10], bias: [10], outputs: 2 },
  { name: 'two normalized axes, broadcast bias', x: randomTensor([2, 6, 8], 4), axis: 1, scale: [6, 8], bias: [8], outputs: 1 },
  { name: 'no bias, custom epsilon', x: randomTensor([5, 16], 5), axis: -1, scale: [16], bias: null, outputs: 1, epsilon: 1e-3 },
  { name: 'a mean that dwarfs the spread (two-pass accuracy)', x: randomTensor([4, 256], 6, 999, 1001), axis: -1, scale: [256], bias: [256], outputs: 3 },
  { name: 'few long rows (workgroup strategy)', x: randomTensor([2, 4096], 7), axis: -1, scale: [4096], bias: [4096], outputs: 3 },
];

t.test('LayerNormalization matches onnxruntime on both row strategies, with its statistics outputs', async (t) => {
  let seed = 50;
  for (const c of LAYER_NORM_CASES) {
    const scale = randomTensor(c.scale, seed++, 0.5, 1.5);
    const bias = c.bias ? randomTensor(c.bias, seed++) : null;
    const rank = c.x.dims.length;
    const axis = c.axis < 0 ? c.axis + rank : c.axis;
    const normalized = c.x.dims.slice(axis);
    const rowLength = normalized.reduce((p, s) => p * s, 1);
    for (const isCpu of [true, false]) {
      const attributes: SingleOpCase['attributes'] = { axis: c.axis };
      if (c.epsilon !== undefined) attributes.epsilon = { float: c.epsilon };
      const single: SingleOpCase = {
        opType: 'LayerNormalization', opset: 17, inputs: bias ? [c.x, scale, bias] : [c.x, scale], constantInputs: [1, 2],
        attributes, outputCount: c.outputs, device: { isCpu },
      };
      const { gpu, ort } = await runBoth(single);
      const bounds = rowBounds(c.x, rowLength, c.epsilon ?? 1e-5, true,
        (_, j) => broadcastAt(scale, normalized, j, 1), (_, j) => broadcastAt(bias, normalized, j, 0), ort[0]);
      const strategy = isCpu ? 'CPU' : 'GPU';
      t.equal(outside(gpu[0], ort[0], bounds.y), null, `${c.name}: Y (${strategy} strategy)`);
      if (c.outputs > 1) t.equal(outside(gpu[1], ort[1], bounds.mean), null, `${c.name}: Mean (${strategy} strategy)`);
      if (c.outputs > 2) t.equal(outside(gpu[2], ort[2], bounds.rstd), null, `${c.name}: InvStdDev (${strategy} strategy)`);
    }
  }
});

t.test('LayerNormalization infers Mean and InvStdDev as float32 with the normalized dims set to 1', async (t) => {
  const op = findOp('', 'LayerNormalization')!;
  const types = op.infer(opContextFor({ opType: 'LayerNormalization', opset: 17, inputs: [randomTensor([2, 40, 120], 1), randomTensor([40, 120], 2)], attributes: { axis: 1 }, outputCount: 3 }));
  t.same(types, [{ dtype: 'float32', shape: [2, 40, 120] }, { dtype: 'float32', shape: [2, 1, 1] }, { dtype: 'float32', shape: [2, 1, 1] }]);
});

const INSTANCE_CASES: { name: string; dims: number[] }[] = [
  { name: 'NCHW [2,3,5,7]', dims: [2, 3, 5, 7] },
  { name: 'NCDHW [1,2,3,4,5]', dims: [1, 2, 3, 4, 5] },
  { name: 'few long rows [1,4,5000]', dims: [1, 4, 5000] },
];

t.test('InstanceNormalization matches onnxruntime on both row strategies', async (t) => {
  let seed = 80;
  for (const c of INSTANCE_CASES) {
    const x = randomTensor(c.dims, seed++);
    const channels = c.dims[1];
    const scale = randomTensor([channels], seed++, 0.5, 1.5);
    const bias = randomTensor([channels], seed++);
    const rowLength = c.dims.slice(2).reduce((p, s) => p * s, 1);
    for (const isCpu of [true, false]) {
      const { gpu, ort } = await runBoth({ opType: 'InstanceNormalization', opset: 6, inputs: [x, scale, bias], attributes: { epsilon: { float: 1e-4 } }, device: { isCpu } });
      const bounds = rowBounds(x, rowLength, 1e-4, true, (row) => scale.data[row % channels], (row) => bias.data[row % channels], ort[0]);
      t.equal(outside(gpu[0], ort[0], bounds.y), null, `${c.name} (${isCpu ? 'CPU' : 'GPU'} strategy)`);
    }
  }
});

t.test('RMSNormalization (opset 23) matches onnxruntime on both row strategies', async (t) => {
  const x = randomTensor([3, 7, 32], 90);
  const scale = randomTensor([32], 91, 0.5, 1.5);
  for (const isCpu of [true, false]) {
    const { gpu, ort } = await runBoth({ opType: 'RMSNormalization', opset: 23, inputs: [x, scale], constantInputs: [1], device: { isCpu } });
    const bounds = rowBounds(x, 32, 1e-5, false, (_, j) => scale.data[j], () => 0, ort[0]);
    t.equal(outside(gpu[0], ort[0], bounds.y), null, `[3,7,32] over the last axis (${isCpu ? 'CPU' : 'GPU'} strategy)`);
  }
});

t.test('normalization ops reject bad shapes and dtypes with coded errors', async (t) => {
  const infer = (c: SingleOpCase) => () => findOp('', c.opType)!.infer(opContextFor(c));
  const x = randomTensor([2, 3, 4], 1);
  await expectEdgerunError(t, infer({ opType: 'LayerNormalization', inputs: [x, randomTensor([3], 2)] }), 'EDGERUN_ERR_SHAPE', /layernormalization_under_test/, /Scale \[3\]/);
  await expectEdgerunError(t, infer({ opType: 'LayerNormalization', inputs: [x, randomTensor([4], 2), randomTensor([5], 3)] }), 'EDGERUN_ERR_SHAPE', /B \[5\]/);
  await expectEdgerunError(t, infer({ opType: 'LayerNormalization', inputs: [x, randomTensor([4], 2)], attributes: { axis: 3 } }), 'EDGERUN_ERR_SHAPE', /out of range/);
  await expectEdgerunError(t, infer({ opType: 'LayerNormalization', inputs: [x] }), 'EDGERUN_ERR_SHAPE', /input 1 is required/);
  await expectEdgerunError(t, infer({ opType: 'LayerNormalization', inputs: [intTensor('int32', [2], [1, 2]), randomTensor([2], 2)] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /int32/);
  await expectEdgerunError(t, infer({ opType: 'InstanceNormalization', inputs: [x, randomTensor([4], 2), randomTensor([3], 3)] }), 'EDGERUN_ERR_SHAPE', /instancenormalization_under_test/, /scale must be \[3\]/);
  await expectEdgerunError(t, infer({ opType: 'InstanceNormalization', inputs: [randomTensor([2, 3], 1), randomTensor([3], 2), randomTensor([3], 3)] }), 'EDGERUN_ERR_SHAPE', /\[N, C, D1/);
});
