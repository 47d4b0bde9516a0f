/** agreement(): the metric the accuracy gate and shadow runs share. */
import t from 'tap';
import { agreement, combineAgreement } from '../../daemon/telemetry/agreement.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const f32 = (dims: number[], values: number[]): Tensor => ({ dtype: 'float32', dims, data: Float32Array.from(values) });

t.test('argmax compares the decision of each row of the last axis', async (t) => {
  const a = f32([3, 3], [0.1, 0.7, 0.2, 0.5, 0.4, 0.1, 0, 0, 1]);
  const b = f32([3, 3], [0.2, 0.6, 0.2, 0.3, 0.6, 0.1, 0, 0.1, 0.9]);
  t.same(agreement(a, b, 'argmax'), { agreeing: 2, compared: 3, fraction: 2 / 3 });
});

t.test('argmax takes the first maximum on ties, and a row with NaN disagrees', async (t) => {
  const a = f32([2, 3], [1, 1, 0, NaN, 0, 0]);
  const b = f32([2, 3], [1, 0.5, 0, NaN, 0, 0]);
  t.same(agreement(a, b, 'argmax'), { agreeing: 1, compared: 2, fraction: 0.5 });
});

t.test('argmax works on integer tensors and treats a scalar as one row', async (t) => {
  const a: Tensor = { dtype: 'int64', dims: [2, 2], data: Int32Array.from([3, 4, 9, 1]) };
  const b: Tensor = { dtype: 'int64', dims: [2, 2], data: Int32Array.from([5, 4, 2, 1]) };
  t.same(agreement(a, b, 'argmax'), { agreeing: 1, compared: 2, fraction: 0.5 });
  t.same(agreement(f32([], [1]), f32([], [2]), 'argmax'), { agreeing: 1, compared: 1, fraction: 1 });
});

t.test('allclose counts elements within the absolute tolerance; NaN disagrees, equal infinities agree', async (t) => {
  const a = f32([5], [1, 2, 3, NaN, Infinity]);
  const b = f32([5], [1.00005, 2.01, 3, NaN, Infinity]);
  t.same(agreement(a, b, 'allclose'), { agreeing: 3, compared: 5, fraction: 0.6 });
  t.same(agreement(a, b, 'allclose', { tolerance: 0.1 }).agreeing, 4);
});

t.test('an empty tensor compares nothing and reports full agreement', async (t) => {
  t.same(agreement(f32([0, 4], []), f32([0, 4], []), 'argmax'), { agreeing: 0, compared: 0, fraction: 1 });
});

t.test('combineAgreement sums items across outputs and cases', async (t) => {
  t.same(combineAgreement([{ agreeing: 1, compared: 2, fraction: 0.5 }, { agreeing: 3, compared: 3, fraction: 1 }]), { agreeing: 4, compared: 5, fraction: 0.8 });
  t.same(combineAgreement([]), { agreeing: 0, compared: 0, fraction: 1 });
});

t.test('mismatched shapes, dtypes, tolerances and metrics are coded errors naming the output', async (t) => {
  await expectEdgerunError(t, () => agreement(f32([2], [1, 2]), f32([1, 2], [1, 2]), 'allclose', { name: 'logits' }), 'EDGERUN_ERR_SHAPE', /'logits'/, /\[2\] differs from \[1,2\]/);
  await expectEdgerunError(t, () => agreement(f32([1], [1]), { dtype: 'int32', dims: [1], data: Int32Array.from([1]) }, 'argmax'), 'EDGERUN_ERR_SHAPE', /dtype float32 differs from int32/);
  await expectEdgerunError(t, () => agreement(f32([1], [1]), f32([1], [1]), 'allclose', { tolerance: -1 }), 'EDGERUN_ERR_CONFIG', /tolerance/);
  await expectEdgerunError(t, () => agreement(f32([1], [1]), f32([1], [1]), 'top5' as never), 'EDGERUN_ERR_CONFIG', /unknown metric 'top5'/);
});
