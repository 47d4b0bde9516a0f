/**
 * Reduce* and ArgMax/ArgMin on the real adapter (both row strategies) and through `fold`, against onnxruntime.
 *
 * Error bounds, per output row of L elements (u = 2^-24), for two f32 implementations summing in any order:
 *  - Sum / Mean / L1: 2·(L+1)·u·Σ|x| (γ_L each side, +1 for Mean's division);
 *  - SumSquare: 2·(L+2)·u·Σx²; L2 = sqrt of it: relative 2·(L+3)·u;
 *  - LogSum: the sum's relative error 2·(L+1)·u·Σ|x|/|Σx| carried through log, plus WGSL log's 2^-21 absolute;
 *  - LogSumExp: every term exp(x - max) has WGSL exp's relative error (3 + 2·|x - max|) ulp, so the sum is
 *    within 2·(L + 3 + 2·range)·u relative, then log as above;
 *  - Prod: relative 2·(L+1)·u; Max / Min / ArgMax / ArgMin and all integer reductions: exact.
 */
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, runBoth, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { foldCase } from '../helpers/op-compare.ts';

const U = 2 ** -24;

interface RowStats {
  count: number;
  absSum: number;
  sum: number;
  sumSquares: number;
  max: number;
  /** The smallest finite value (for LogSumExp's range: -inf terms contribute exactly 0). */
  min: number;
}

/** Per-output statistics of the rows over the (non-negative) reduced axes, by brute force over every element. */
function rowStats(x: Tensor, axes: number[]): RowStats[] {
  const dims = x.dims;
  const reduced = new Set(axes);
  const outDims = dims.map((size, d) => (reduced.has(d) ? 1 : size));
  const outCount = outDims.reduce((p, s) => p * s, 1);
  const stats: RowStats[] = Array.from({ length: outCount }, () => ({ count: 0, absSum: 0, sum: 0, sumSquares: 0, max: -Infinity, min: Infinity }));
  for (let i = 0; i < x.data.length; i++) {
    let rest = i;
    let out = 0;
    let outStride = 1;
    for (let d = dims.length - 1; d >= 0; d--) {
      const coord = rest % dims[d];
      rest = Math.floor(rest / dims[d]);
      if (!reduced.has(d)) out += coord * outStride;
      outStride *= outDims[d];
    }
    const v = x.data[i];
    const s = stats[out];
    s.count++;
    s.absSum += Math.abs(v);
    s.sum += v;
    s.sumSquares += v * v;
    s.max = Math.max(s.max, v);
    if (Number.isFinite(v)) s.min = Math.min(s.min, v);
  }
  return stats;
}

/** The allowed |gpu - ort| for output `y` of row `s` (see the header). */
function bound(op: string, s: RowStats, y: number, integral: boolean): number {
  if (integral) return 0;
  const L = s.count;
  switch (op) {
    case 'ReduceSum': case 'ReduceL1': return 2 * (L + 1) * U * s.absSum;
    case 'ReduceMean': return 2 * (L + 1) * U * s.absSum / L;
    case 'ReduceSumSquare': return 2 * (L + 2) * U * s.sumSquares;
    case 'ReduceL2': return 2 * (L + 3) * U * Math.abs(y);
    case 'ReduceLogSum': return 2 * (L + 1) * U * s.absSum / Math.abs(s.sum) + 2 ** -21 + 2 * U * Math.abs(y);
    case 'ReduceLogSumExp': return 2 * (L + 3 + 2 * (s.max - s.min)) * U + 2 ** -21 + 2 * U * Math.abs(y);
    case 'ReduceProd': return 2 * (L + 1) * U * Math.abs(y);
    default: return 0;
  }
}

function outside(op: string, x: Tensor, axes: number[], actual: Tensor, expected: Tensor): string | null {
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] vs [${expected.dims}]`;
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype} vs ${expected.dtype}`;
  const stats = rowStats(x, axes);
  const integral = x.dtype !== 'float32';
  for (let i = 0; i < expected.data.length; i++) {
    if (actual.data[i] === expected.data[i]) continue;
    const diff = Math.abs(actual.data[i] - expected.data[i]);
    const allowed = bound(op, stats[i], expected.data[i], integral);
    if (!(diff <= allowed)) return `element ${i}: ${actual.data[i]} vs ${expected.data[i]} (|diff| ${diff} > ${allowed})`;
  }
  return null;
}

interface ReduceCase {
  name: string;
  op: string;
  x: Tensor;
  opset: number;
  /** The reduced axes as given (attribute before the op's axes-input opset, constant input after); null = none. */
  axes: number[] | null;
  keepdims?: number;
  noop?: number;
}

function axesInputSince(op: string): number {
  return op === 'ReduceSum' ? 13 : 18;
}

function toSingle(c: ReduceCase, isCpu: boolean): SingleOpCase {
  const attributes: SingleOpCase['attributes'] = {};
  if (c.keepdims !== undefined) attributes.keepdims = c.keepdims;
  if (c.noop !== undefined) attributes.noop_with_empty_axes = c.noop;
  const inputs: (Tensor | null)[] = [c.x];
  const asInput = c.opset >= axesInputSince(c.op);
  if (c.axes && asInput) inputs.push(intTensor('int64', [c.axes.length], c.axes));
  if (c.axes && !asInput) attributes.axes = c.axes;
  return { opType: c.op, opset: c.opset, inputs, constantInputs: inputs.length > 1 ? [1] : [], attributes, device: { isCpu } };
}

/** The reduced axes by ONNX rules: none given means all, or none at all with noop_with_empty_axes. */
function reducedAxes(c: ReduceCase): number[] {
  const rank = c.x.dims.length;
  if (c.axes && c.axes.length) return c.axes.map((a) => (a < 0 ? a + rank : a));
  return c.noop ? [] : c.x.dims.map((_, d) => d);
}

const CASES: ReduceCase[] = [
  { name: 'rec LayerNorm mean [1,40,120] axes [-1] (opset 9)', op: 'ReduceMean', x: randomTensor([1, 40, 120], 1), opset: 9, axes: [-1] },
  { name: 'non-adjacent axes [1,3], keepdims 0', op: 'ReduceMean', x: randomTensor([2, 3, 4, 5], 2), opset: 13, axes: [1, 3], keepdims: 0 },
  { name: 'axes as input [0,2] (opset 13)', op: 'ReduceSum', x: randomTensor([3, 4, 5, 6], 3), opset: 13, axes: [0, 2], keepdims: 0 },
  { name: 'negative axis attribute (opset 11)', op: 'ReduceSum', x: randomTensor([3, 4, 5], 4), opset: 11, axes: [-2] },
  { name: 'no axes reduces everything', op: 'ReduceSum', x: randomTensor([3, 4, 5], 5), opset: 13, axes: null },
  { name: 'few long rows (workgroup tree reduction)', op: 'ReduceSum', x: randomTensor([2, 5000], 6), opset: 13, axes: [1] },
  { name: 'strided long rows [3,1000,2] axis 1', op: 'ReduceMean', x: randomTensor([3, 1000, 2], 7), opset: 18, axes: [1] },
  { name: 'middle axis [4,300,3]', op: 'ReduceMax', x: randomTensor([4, 300, 3], 8), opset: 18, axes: [1] },
  { name: 'leading axes [0,1]', op: 'ReduceMin', x: randomTensor([5, 6, 7], 9), opset: 13, axes: [0, 1] },
  { name: 'product of [0.5,1.5] values', op: 'ReduceProd', x: randomTensor([3, 17], 10, 0.5, 1.5), opset: 18, axes: [1] },
  { name: 'L1', op: 'ReduceL1', x: randomTensor([5, 33], 11), opset: 18, axes: [-1] },
  { name: 'L2', op: 'ReduceL2', x: randomTensor([5, 33], 12), opset: 18, axes: [-1] },
  { name: 'SumSquare over axis 0', op: 'ReduceSumSquare', x: randomTensor([6, 9], 13), opset: 13, axes: [0] },
  { name: 'LogSum of positive values', op: 'ReduceLogSum', x: randomTensor([5, 33], 14, 0.1, 1), opset: 18, axes: [-1] },
  { name: 'LogSumExp over a wide range (stability)', op: 'ReduceLogSumExp', x: randomTensor([2, 3000], 15, -80, 80), opset: 18, axes: [1] },
  { name: 'LogSumExp of rows holding -inf (all -inf gives -inf, not NaN)', op: 'ReduceLogSumExp', x: floatTensor([2, 3], [-Infinity, -Infinity, -Infinity, 1, 2, -Infinity]), opset: 13, axes: [1] },
  { name: 'Max of rows holding -inf', op: 'ReduceMax', x: floatTensor([2, 3], [-Infinity, -Infinity, -Infinity, 1, 2, -Infinity]), opset: 18, axes: [1] },
  { name: 'LogSumExp with keepdims 0', op: 'ReduceLogSumExp', x: randomTensor([4, 7, 3], 16, -5, 5), opset: 13, axes: [1], keepdims: 0 },
  { name: 'noop_with_empty_axes: input passes through', op: 'ReduceSum', x: randomTensor([3, 4], 17), opset: 13, axes: null, noop: 1 },
  { name: 'noop_with_empty_axes keeps the per-element transform (x²)', op: 'ReduceSumSquare', x: randomTensor([3, 4], 18), opset: 18, axes: [], noop: 1 },
  { name: 'sum over an empty axis is 0', op: 'ReduceSum', x: randomTensor([3, 0], 30), opset: 13, axes: [1] },
  { name: 'int32 sum', op: 'ReduceSum', x: intTensor('int32', [4, 6], Array.from({ length: 24 }, (_, i) => (i * 7) % 11 - 5)), opset: 13, axes: [1] },
  { name: 'int64 max', op: 'ReduceMax', x: intTensor('int64', [3, 4], [1, 5, 2, 7, 3, 3, 9, 0, -4, -2, -8, -1]), opset: 13, axes: [0] },
  { name: 'int64 product', op: 'ReduceProd', x: intTensor('int64', [2, 3], [2, -3, 4, 1, 5, -2]), opset: 13, axes: [1], keepdims: 0 },
];

t.test('Reduce ops match onnxruntime on both row strategies', async (t) => {
  for (const c of CASES) {
    for (const isCpu of [true, false]) {
      const { gpu, ort } = await runBoth(toSingle(c, isCpu));
      t.equal(outside(c.op, c.x, reducedAxes(c), gpu[0], ort[0]), null, `${c.op}: ${c.name} (${isCpu ? 'CPU' : 'GPU'} strategy)`);
    }
  }
});

t.test('Reduce folds constant inputs on the CPU like onnxruntime', async (t) => {
  for (const c of CASES) {
    const single = toSingle(c, true);
    const [folded] = foldCase(single);
    const { ort } = await runBoth(single);
    t.equal(outside(c.op, c.x, reducedAxes(c), folded, ort[0]), null, `${c.op}: ${c.name}`);
  }
});

const ARG_VALUES = [1, 5, 5, 2, 3, 3, 9, 9, -4, -2, -8, -8];

const ARG_CASES: { name: string; op: 'ArgMax' | 'ArgMin'; x: Tensor; opset: number; attributes: SingleOpCase['attributes'] }[] = [
  { name: 'ties take the first index', op: 'ArgMax', x: floatTensor([3, 4], ARG_VALUES), opset: 13, attributes: { axis: 1 } },
  { name: 'select_last_index takes the last tie', op: 'ArgMax', x: floatTensor([3, 4], ARG_VALUES), opset: 13, attributes: { axis: 1, select_last_index: 1 } },
  { name: 'ArgMin over axis 0, keepdims 0', op: 'ArgMin', x: floatTensor([3, 4], ARG_VALUES), opset: 13, attributes: { axis: 0, keepdims: 0 } },
  { name: 'ArgMin select_last_index', op: 'ArgMin', x: floatTensor([3, 4], ARG_VALUES), opset: 13, attributes: { axis: -1, select_last_index: 1 } },
  { name: 'middle axis of [2,50,3]', op: 'ArgMax', x: randomTensor([2, 50, 3], 20), opset: 11, attributes: { axis: 1 } },
  { name: 'default axis 0 on int32', op: 'ArgMin', x: intTensor('int32', [3, 2], [4, -1, 2, 7, 2, 0]), opset: 13, attributes: {} },
  { name: 'rec decoding: ArgMax over 6625 classes', op: 'ArgMax', x: randomTensor([1, 40, 6625], 21), opset: 9, attributes: { axis: 2 } },
];

t.test('ArgMax and ArgMin match onnxruntime exactly, on the GPU and through fold', async (t) => {
  for (const c of ARG_CASES) {
    const single: SingleOpCase = { opType: c.op, opset: c.opset, inputs: [c.x], attributes: c.attributes };
    const { gpu, ort } = await runBoth(single);
    t.same({ dims: gpu[0].dims, dtype: gpu[0].dtype, data: [...gpu[0].data] }, { dims: ort[0].dims, dtype: ort[0].dtype, data: [...ort[0].data] }, `${c.op} GPU: ${c.name}`);
    const [folded] = foldCase(single);
    t.same([...folded.data], [...ort[0].data], `${c.op} fold: ${c.name}`);
  }
});

t.test('Reduce and ArgMax reject bad axes, dynamic axes and unsupported dtypes with coded errors', async (t) => {
  const infer = (c: SingleOpCase) => () => findOp('', c.opType)!.infer(opContextFor(c));
  const x = randomTensor([3, 4], 1);
  await expectEdgerunError(t, infer({ opType: 'ReduceSum', opset: 11, inputs: [x], attributes: { axes: [2] } }), 'EDGERUN_ERR_SHAPE', /reducesum_under_test/, /axis 2 is out of range/);
  await expectEdgerunError(t, infer({ opType: 'ReduceMean', opset: 13, inputs: [x], attributes: { axes: [1, -1] } }), 'EDGERUN_ERR_SHAPE', /repeated/);
  await expectEdgerunError(t, infer({ opType: 'ReduceMax', opset: 18, inputs: [x, intTensor('int64', [1], [0])] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /axes input must be a constant/);
  await expectEdgerunError(t, infer({ opType: 'ReduceL2', opset: 13, inputs: [intTensor('int32', [2], [1, 2])] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /int32/);
  await expectEdgerunError(t, infer({ opType: 'ReduceSum', opset: 11, inputs: [x, intTensor('int64', [1], [0])] }), 'EDGERUN_ERR_SHAPE', /1 input before opset 13/);
  await expectEdgerunError(t, infer({ opType: 'ArgMax', opset: 13, inputs: [x], attributes: { axis: -3 } }), 'EDGERUN_ERR_SHAPE', /argmax_under_test/, /out of range/);
  await expectEdgerunError(t, infer({ opType: 'ArgMin', opset: 13, inputs: [intTensor('bool', [2], [0, 1])] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /bool/);
});

t.test('row kernels pick one invocation per row for many or short rows, a workgroup per row for few long rows', async (t) => {
  const key = async (dims: number[], isCpu: boolean) =>
    (await buildSingleOp({ opType: 'ReduceSum', opset: 11, inputs: [randomTensor(dims, 1)], attributes: { axes: [-1] }, device: { isCpu } })).programs[0].key;
  t.match(await key([40, 120], true), /invocation/, 'rec-sized rows on a CPU adapter');
  t.match(await key([2, 5000], true), /workgroup/, 'two long rows on a CPU adapter');
  t.match(await key([40, 120], false), /workgroup/, 'rec-sized rows on a GPU');
  t.match(await key([10000, 16], false), /invocation/, 'many short rows on a GPU');
});
