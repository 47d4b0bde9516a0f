import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { compareTensors, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, type AttrInput, type SingleOpCase } from '../helpers/kernel-harness.ts';

interface PoolCase {
  name: string;
  op: 'MaxPool' | 'AveragePool' | 'GlobalAveragePool' | 'GlobalMaxPool';
  x: number[];
  attributes?: Record<string, AttrInput>;
  opset?: number;
  dtype?: 'int8' | 'uint8';
}

const cases: PoolCase[] = [
  { name: 'cls MaxPool 2x2 s2', op: 'MaxPool', x: [1, 8, 6, 10], attributes: { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] }, opset: 9 },
  { name: 'MaxPool 3x3 s2 p1', op: 'MaxPool', x: [2, 3, 9, 8], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'MaxPool ceil_mode', op: 'MaxPool', x: [1, 3, 7, 8], attributes: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
  { name: 'MaxPool ceil_mode drops a window starting in the end padding', op: 'MaxPool', x: [1, 2, 3, 5], attributes: { kernel_shape: [2, 2], strides: [3, 3], pads: [0, 0, 1, 1], ceil_mode: 1 } },
  { name: 'AveragePool ceil_mode drops a window starting in the end padding', op: 'AveragePool', x: [1, 2, 3, 5], attributes: { kernel_shape: [2, 2], strides: [3, 3], pads: [0, 0, 1, 1], ceil_mode: 1, count_include_pad: 1 } },
  { name: 'MaxPool dilations', op: 'MaxPool', x: [1, 2, 9, 9], attributes: { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 0, 1, 2] } },
  { name: 'MaxPool auto_pad SAME_UPPER', op: 'MaxPool', x: [1, 2, 7, 6], attributes: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'MaxPool auto_pad SAME_LOWER', op: 'MaxPool', x: [1, 2, 7, 6], attributes: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_LOWER' } },
  { name: 'MaxPool auto_pad VALID', op: 'MaxPool', x: [1, 2, 7, 6], attributes: { kernel_shape: [3, 3], strides: [2, 1], auto_pad: 'VALID' } },
  { name: 'MaxPool 1D', op: 'MaxPool', x: [2, 3, 11], attributes: { kernel_shape: [3], strides: [2], pads: [1, 1] } },
  { name: 'MaxPool 3D', op: 'MaxPool', x: [1, 2, 5, 6, 4], attributes: { kernel_shape: [2, 2, 2], strides: [2, 2, 1] } },
  { name: 'MaxPool int8 (opset 12)', op: 'MaxPool', x: [1, 2, 5, 5], attributes: { kernel_shape: [2, 2] }, opset: 12, dtype: 'int8' },
  { name: 'MaxPool uint8 (opset 12)', op: 'MaxPool', x: [1, 2, 5, 5], attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, opset: 12, dtype: 'uint8' },
  { name: 'rec AveragePool 3x2 s3x2 count_include_pad 0', op: 'AveragePool', x: [1, 16, 3, 40], attributes: { kernel_shape: [3, 2], strides: [3, 2], pads: [0, 0, 0, 0], count_include_pad: 0 }, opset: 9 },
  { name: 'AveragePool pads, excluding pad', op: 'AveragePool', x: [1, 3, 7, 6], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'AveragePool pads, including pad', op: 'AveragePool', x: [1, 3, 7, 6], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 } },
  { name: 'AveragePool ceil_mode including pad', op: 'AveragePool', x: [1, 2, 8, 7], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 } },
  { name: 'AveragePool ceil_mode excluding pad', op: 'AveragePool', x: [1, 2, 8, 7], attributes: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
  { name: 'AveragePool asymmetric pads including pad', op: 'AveragePool', x: [1, 2, 6, 6], attributes: { kernel_shape: [2, 3], pads: [0, 2, 1, 1], count_include_pad: 1 } },
  { name: 'AveragePool auto_pad SAME_UPPER', op: 'AveragePool', x: [1, 2, 7, 6], attributes: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'AveragePool dilations (opset 19)', op: 'AveragePool', x: [1, 2, 9, 9], attributes: { kernel_shape: [2, 2], dilations: [2, 3], pads: [1, 1, 1, 1] }, opset: 19 },
  { name: 'AveragePool 1D', op: 'AveragePool', x: [1, 3, 10], attributes: { kernel_shape: [4], strides: [3] } },
  { name: 'GlobalAveragePool (vec4 plane)', op: 'GlobalAveragePool', x: [2, 5, 4, 6] },
  { name: 'GlobalAveragePool (odd plane)', op: 'GlobalAveragePool', x: [1, 7, 5, 3] },
  { name: 'GlobalAveragePool large plane', op: 'GlobalAveragePool', x: [1, 3, 40, 40] },
  { name: 'GlobalAveragePool 1D', op: 'GlobalAveragePool', x: [2, 3, 9] },
  { name: 'GlobalMaxPool', op: 'GlobalMaxPool', x: [2, 4, 5, 5] },
  { name: 'GlobalMaxPool large 3D plane', op: 'GlobalMaxPool', x: [1, 2, 4, 10, 10] },
];

function input(c: PoolCase, seed: number): Tensor {
  const base = randomTensor(c.x, seed, -3, 3);
  if (!c.dtype) return base;
  const lo = c.dtype === 'int8' ? -128 : 0;
  return { dtype: c.dtype, dims: c.x, data: Int32Array.from(base.data, (v, i) => lo + ((Math.round(v * 1000) + i * 37) & 255)) };
}

t.test('pooling matches onnxruntime', async (t) => {
  let seed = 500;
  for (const c of cases) {
    seed += 3;
    const single: SingleOpCase = { opType: c.op, opset: c.opset ?? 17, inputs: [input(c, seed)], attributes: c.attributes };
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, [c.dtype ?? 'float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape [${gpu.dims}]`);
    // max is exact; an average of K values differs by at most a few ulps of the sum (K · 2^-23 relative)
    const size = c.op.startsWith('Global') ? c.x.slice(2).reduce((a, b) => a * b, 1) : 9;
    const bound = c.op.includes('Max') ? 0 : 3 * size * 2 ** -23;
    t.ok(diff.maxAbs <= bound, `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)} within ${bound.toExponential(2)}`);
  }
});

t.test('global pools match onnxruntime with the GPU workgroup reduction', async (t) => {
  const device = { isCpu: false, features: new Set<string>() };
  let seed = 900;
  for (const c of cases.filter((x) => x.op.startsWith('Global'))) {
    seed += 3;
    const single: SingleOpCase = { opType: c.op, opset: 17, inputs: [input(c, seed)], device };
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, ['float32']);
    const size = c.x.slice(2).reduce((a, b) => a * b, 1);
    const diff = compareTensors(gpu, expected);
    t.ok(diff.mismatch === undefined && diff.maxAbs <= (c.op.includes('Max') ? 0 : 3 * size * 2 ** -23), `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
  }
});

t.test('pooling infer rejects bad inputs with coded errors', async (t) => {
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'MaxPool Indices output', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'MaxPool', inputs: [randomTensor([1, 1, 4, 4], 1)], attributes: { kernel_shape: [2, 2] }, outputCount: 2 } },
    { name: 'missing kernel_shape', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'MaxPool', inputs: [randomTensor([1, 1, 4, 4], 1)] } },
    { name: 'kernel_shape rank mismatch', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'AveragePool', inputs: [randomTensor([1, 1, 4, 4], 1)], attributes: { kernel_shape: [2] } } },
    { name: 'window larger than input', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'AveragePool', inputs: [randomTensor([1, 1, 2, 2], 1)], attributes: { kernel_shape: [3, 3] } } },
    { name: 'rank 2 input', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'GlobalAveragePool', inputs: [randomTensor([2, 3], 1)] } },
    { name: 'integer AveragePool', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'AveragePool', inputs: [{ dtype: 'int8', dims: [1, 1, 2, 2], data: new Int32Array(4) }], attributes: { kernel_shape: [2, 2] } } },
    { name: 'pads of wrong length', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'MaxPool', inputs: [randomTensor([1, 1, 4, 4], 1)], attributes: { kernel_shape: [2, 2], pads: [1, 1] } } },
  ];
  for (const b of bad) {
    const op = findOp('', b.c.opType)!;
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});
