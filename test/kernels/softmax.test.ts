/**
 * Softmax / LogSoftmax on the real adapter (both row strategies) against onnxruntime, with the opset 9/11
 * coercion-to-2-D semantics and the opset 13 single-axis semantics.
 *
 * Error bound (u = 2^-24), rows of L elements whose values span a range R:
 *  - Softmax y = exp(x - max) / Σ: WGSL's exp is within (3 + 2·|x - max|) ulp, so every term and the sum
 *    carry a relative error of at most (3 + 2R)·u + L·u; both implementations together: relative
 *    2·(4 + 2R + L)·u per element, plus 2^-126 absolute because WGSL may flush subnormal results to zero.
 *  - LogSoftmax y = x - max - log Σ: absolute 2·((4 + 2R + L)·u + 2^-21) + 2·u·(|x| + |max| + |y|), the
 *    last term for the roundings of the subtractions, 2^-21 for WGSL's log.
 */
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { intTensor, opContextFor, randomTensor, runBoth, type SingleOpCase } from '../helpers/kernel-harness.ts';

const U = 2 ** -24;

interface SoftmaxCase {
  name: string;
  op: 'Softmax' | 'LogSoftmax';
  x: Tensor;
  opset: number;
  axis?: number;
  /** Elements per normalised row (for the bound). */
  rowLength: number;
}

const CASES: SoftmaxCase[] = [
  { name: 'rec attention [1,8,40,40] axis 3 (opset 9)', op: 'Softmax', x: randomTensor([1, 8, 40, 40], 1, -4, 4), opset: 9, axis: 3, rowLength: 40 },
  { name: 'rec classifier [1,40,6625] axis 2 (opset 9)', op: 'Softmax', x: randomTensor([1, 40, 6625], 2, -10, 10), opset: 9, axis: 2, rowLength: 6625 },
  { name: 'opset 11 coerces to 2-D at the default axis 1', op: 'Softmax', x: randomTensor([2, 3, 4], 3, -3, 3), opset: 11, rowLength: 12 },
  { name: 'opset 11 coerces to 2-D at axis 0', op: 'LogSoftmax', x: randomTensor([2, 3, 4], 4, -3, 3), opset: 11, axis: 0, rowLength: 24 },
  { name: 'opset 13 normalises one middle axis (strided rows)', op: 'Softmax', x: randomTensor([2, 3, 4], 5, -3, 3), opset: 13, axis: 1, rowLength: 3 },
  { name: 'opset 13 default axis -1', op: 'LogSoftmax', x: randomTensor([3, 5, 7], 6, -3, 3), opset: 13, rowLength: 7 },
  { name: 'large magnitudes stay finite (max subtracted)', op: 'Softmax', x: randomTensor([4, 50], 7, -100, 100), opset: 13, rowLength: 50 },
  { name: 'large magnitudes, log form', op: 'LogSoftmax', x: randomTensor([4, 50], 8, -100, 100), opset: 13, rowLength: 50 },
  { name: 'few long rows (workgroup strategy)', op: 'Softmax', x: randomTensor([2, 5000], 9, -5, 5), opset: 13, rowLength: 5000 },
  { name: 'few long strided rows', op: 'LogSoftmax', x: randomTensor([2, 700, 3], 10, -5, 5), opset: 13, axis: 1, rowLength: 700 },
];

function outside(c: SoftmaxCase, actual: Tensor, expected: Tensor): string | null {
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] vs [${expected.dims}]`;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of c.x.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const range = hi - lo;
  const L = c.rowLength;
  for (let i = 0; i < expected.data.length; i++) {
    const e = expected.data[i];
    const allowed = c.op === 'Softmax'
      ? 2 * (4 + 2 * range + L) * U * Math.abs(e) + 2 ** -126
      : 2 * ((4 + 2 * range + L) * U + 2 ** -21) + 2 * U * (Math.abs(c.x.data[i]) + Math.max(Math.abs(lo), Math.abs(hi)) + Math.abs(e));
    const diff = Math.abs(actual.data[i] - e);
    if (!(diff <= allowed)) return `element ${i}: ${actual.data[i]} vs ${e} (|diff| ${diff} > ${allowed})`;
  }
  return null;
}

t.test('Softmax and LogSoftmax match onnxruntime on both row strategies', async (t) => {
  for (const c of CASES) {
    for (const isCpu of [true, false]) {
      const single: SingleOpCase = { opType: c.op, opset: c.opset, inputs: [c.x], attributes: c.axis === undefined ? {} : { axis: c.axis }, device: { isCpu } };
      const { gpu, ort } = await runBoth(single);
      t.equal(outside(c, gpu[0], ort[0]), null, `${c.op}: ${c.name} (${isCpu ? 'CPU' : 'GPU'} strategy)`);
    }
  }
});

t.test('Softmax rows sum to 1 even for inputs whose exp overflows f32', async (t) => {
  const x = randomTensor([3, 64], 11, 500, 1000);
  const { gpu } = await runBoth({ opType: 'Softmax', opset: 13, inputs: [x] });
  for (let r = 0; r < 3; r++) {
    let sum = 0;
    for (let j = 0; j < 64; j++) sum += gpu[0].data[r * 64 + j];
    t.ok(Math.abs(sum - 1) <= 2 * (64 + 4) * U * 64, `row ${r} sums to ${sum}`);
  }
});

t.test('Softmax rejects bad axes, ranks and dtypes with coded errors', async (t) => {
  const infer = (c: SingleOpCase) => () => findOp('', c.opType)!.infer(opContextFor(c));
  await expectEdgerunError(t, infer({ opType: 'Softmax', opset: 13, inputs: [randomTensor([2, 3], 1)], attributes: { axis: 2 } }), 'EDGERUN_ERR_SHAPE', /softmax_under_test/, /out of range/);
  await expectEdgerunError(t, infer({ opType: 'LogSoftmax', opset: 11, inputs: [randomTensor([2, 3], 1)], attributes: { axis: -3 } }), 'EDGERUN_ERR_SHAPE', /out of range/);
  await expectEdgerunError(t, infer({ opType: 'Softmax', opset: 13, inputs: [{ dtype: 'float32', dims: [], data: new Float32Array([1]) }] }), 'EDGERUN_ERR_SHAPE', /rank/);
  await expectEdgerunError(t, infer({ opType: 'Softmax', opset: 13, inputs: [intTensor('int32', [2], [1, 2])] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /int32/);
});
