import t from 'tap';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, runSingleOpOnGpu, seededRandom, testDevice, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { checkCase, difference, EXACT, foldCase, type Tolerance } from '../helpers/op-compare.ts';

/*
 * DequantizeLinear is one subtraction and one multiplication in f32 on every side: exact. QuantizeLinear
 * divides; WGSL allows division 2.5 ulp, so a quotient within a few ulp of a .5 tie may round the other way on
 * the GPU: those cases use values away from ties (the tie cases run through fold, which divides exactly).
 */
const ONE_STEP: Tolerance = { abs: 1, rel: 0 };

function randomInts(dtype: DType, dims: number[], seed: number, lo: number, hi: number): Tensor {
  const rand = seededRandom(seed);
  const count = dims.reduce((a, b) => a * b, 1);
  return intTensor(dtype, dims, Array.from({ length: count }, () => lo + Math.floor(rand() * (hi - lo + 1))));
}

interface Case { name: string; c: SingleOpCase; tolerance?: Tolerance; oracle?: 'ort' | 'fold' }

const cases: Case[] = [
  { name: 'DequantizeLinear-10 int8 per tensor with zero point', c: { opType: 'DequantizeLinear', opset: 10, inputs: [randomInts('int8', [3, 5], 1, -128, 127), floatTensor([], [0.05]), intTensor('int8', [], [-3])] } },
  { name: 'DequantizeLinear-13 uint8 per axis (axis 1)', c: { opType: 'DequantizeLinear', opset: 13, inputs: [randomInts('uint8', [2, 3, 4], 2, 0, 255), floatTensor([3], [0.1, 0.02, 0.3]), intTensor('uint8', [3], [128, 0, 7])], constantInputs: [1, 2] } },
  { name: 'DequantizeLinear-13 int32 per tensor without zero point', c: { opType: 'DequantizeLinear', opset: 13, inputs: [randomInts('int32', [7], 3, -100000, 100000), floatTensor([], [0.001])] } },
  { name: 'DequantizeLinear-13 per axis -1 (negative axis)', c: { opType: 'DequantizeLinear', opset: 13, attributes: { axis: -1 }, inputs: [randomInts('int8', [3, 2], 4, -128, 127), floatTensor([2], [0.5, 0.25])] } },
  { name: 'DequantizeLinear-21 int4 blocks of 4 along axis 0, K = 10 not a multiple of the block', c: { opType: 'DequantizeLinear', opset: 21, attributes: { axis: 0, block_size: 4 }, inputs: [randomInts('int4', [10, 3], 5, -8, 7), randomTensor([3, 3], 6, 0.01, 0.2), randomInts('int4', [3, 3], 7, -8, 7)], constantInputs: [0, 1, 2] } },
  { name: 'DequantizeLinear-21 uint4 blocks of 2 along axis 1, odd width, no zero point', c: { opType: 'DequantizeLinear', opset: 21, attributes: { axis: 1, block_size: 2 }, inputs: [randomInts('uint4', [3, 7], 8, 0, 15), randomTensor([3, 4], 9, 0.01, 0.2)], constantInputs: [0, 1] } },
  { name: 'DequantizeLinear-21 uint8 blocks of 3 on a rank-3 tensor along axis 1', c: { opType: 'DequantizeLinear', opset: 21, attributes: { axis: 1, block_size: 3 }, inputs: [randomInts('uint8', [2, 5, 3], 10, 0, 255), randomTensor([2, 2, 3], 11, 0.01, 0.2), randomInts('uint8', [2, 2, 3], 12, 0, 255)], constantInputs: [1, 2] } },
  { name: 'QuantizeLinear-10 to uint8 without zero point', tolerance: ONE_STEP, c: { opType: 'QuantizeLinear', opset: 10, inputs: [randomTensor([4, 6], 20, -1, 3), floatTensor([], [0.0123])] } },
  { name: 'QuantizeLinear-13 int8 per axis 0 with zero point, saturating', tolerance: ONE_STEP, c: { opType: 'QuantizeLinear', opset: 13, attributes: { axis: 0 }, inputs: [randomTensor([3, 5], 21, -4, 4), floatTensor([3], [0.01, 0.05, 0.1]), intTensor('int8', [3], [0, 10, -20])], constantInputs: [1, 2] } },
  // onnxruntime-node cannot hand int4 outputs back to JavaScript (it aborts): GPU against fold here
  { name: 'QuantizeLinear-21 int4 blocks of 3 along axis 1', tolerance: ONE_STEP, oracle: 'fold', c: { opType: 'QuantizeLinear', opset: 21, attributes: { axis: 1, block_size: 3 }, inputs: [randomTensor([2, 7], 22, -1, 1), randomTensor([2, 3], 23, 0.05, 0.2), randomInts('int4', [2, 3], 24, -2, 2)], constantInputs: [1, 2] } },
  { name: 'QuantizeLinear rounds halves to even and saturates', c: { opType: 'QuantizeLinear', opset: 13, inputs: [floatTensor([9], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 300, -300, 126.5]), floatTensor([], [1]), intTensor('int8', [], [0])], constantInputs: [1, 2] } },
  { name: 'DynamicQuantizeLinear on a mixed-sign tensor', tolerance: ONE_STEP, c: { opType: 'DynamicQuantizeLinear', opset: 11, outputCount: 3, inputs: [randomTensor([4, 6], 30, -2, 5)] } },
  { name: 'DynamicQuantizeLinear on an all-positive tensor (range widened to 0)', tolerance: ONE_STEP, c: { opType: 'DynamicQuantizeLinear', opset: 11, outputCount: 3, inputs: [randomTensor([9], 31, 1, 2)] } },
  { name: 'DynamicQuantizeLinear on zeros', c: { opType: 'DynamicQuantizeLinear', opset: 11, outputCount: 3, inputs: [floatTensor([3], [0, 0, 0])] } },
  { name: 'MatMulInteger uint8 with per-tensor A and per-column B zero points', c: { opType: 'MatMulInteger', opset: 10, inputs: [randomInts('uint8', [3, 5], 40, 0, 255), randomInts('uint8', [5, 4], 41, 0, 255), intTensor('uint8', [], [120]), randomInts('uint8', [4], 42, 100, 150)], constantInputs: [1, 3] } },
  { name: 'MatMulInteger int8 batched A, broadcast B, no zero points', c: { opType: 'MatMulInteger', opset: 10, inputs: [randomInts('int8', [2, 3, 5], 43, -128, 127), randomInts('int8', [5, 2], 44, -128, 127)] } },
  { name: 'MatMulInteger packed constant int8 B, batched uint8 A, dynamic A zero point, K = 9 (a partial word)', c: { opType: 'MatMulInteger', opset: 10, inputs: [randomInts('uint8', [2, 3, 9], 45, 0, 255), randomInts('int8', [9, 6], 46, -128, 127), intTensor('uint8', [], [131]), randomInts('int8', [6], 47, -3, 3)], constantInputs: [1, 3] } },
  { name: 'MatMulInteger packed constant uint8 B without the dot4 language feature, K = 8', c: { opType: 'MatMulInteger', opset: 10, device: { features: new Set() }, inputs: [randomInts('int8', [5, 8], 48, -128, 127), randomInts('uint8', [8, 7], 49, 0, 255), intTensor('int8', [], [-4]), intTensor('uint8', [], [128])], constantInputs: [1, 3] } },
];

for (const { name, c, tolerance, oracle } of cases) {
  if (oracle === 'fold') {
    t.test(`${name}: GPU matches the host fold`, async (t) => {
      const [gpu] = await runSingleOpOnGpu(c);
      t.equal(difference(gpu, foldCase(c)[0], tolerance ?? EXACT), null);
    });
    continue;
  }
  t.test(`${name} matches onnxruntime`, async (t) => {
    const result = await checkCase(c, tolerance ?? EXACT, { foldTolerance: EXACT });
    t.same(result.problems, []);
  });
}

function inferError(c: SingleOpCase): unknown {
  try {
    findOp('', c.opType)!.infer(opContextFor(c));
  } catch (error) {
    return error;
  }
  return null;
}

t.test('bad quantization parameters are coded errors naming the node', async (t) => {
  const x = randomInts('int4', [10, 3], 50, -8, 7);
  t.match(inferError({ opType: 'DequantizeLinear', opset: 21, attributes: { axis: 0, block_size: 4 }, inputs: [x, randomTensor([2, 3], 51)] }),
    { code: 'EDGERUN_ERR_SHAPE', message: /dequantizelinear_under_test.*block_size 4 along axis 0.*expected \[3,3\]/ });
  t.match(inferError({ opType: 'DequantizeLinear', opset: 21, attributes: { axis: 0, block_size: 4 }, inputs: [x, randomTensor([3, 3], 52), randomInts('int8', [3, 3], 53, 0, 1)] }),
    { code: 'EDGERUN_ERR_ONNX_INVALID', message: /dequantizelinear_under_test.*x_zero_point is int8 but x is int4/ });
  t.match(inferError({ opType: 'DequantizeLinear', opset: 13, inputs: [randomInts('int8', [2, 3], 54, 0, 1), randomTensor([2], 55)] }),
    { code: 'EDGERUN_ERR_SHAPE', message: /dequantizelinear_under_test.*scale dims \[2\].*axis 1.*\[3\]/ });
  t.match(inferError({ opType: 'DequantizeLinear', opset: 13, inputs: [randomInts('int4', [2, 3], 56, 0, 1), floatTensor([], [1])] }),
    { code: 'EDGERUN_ERR_ONNX_INVALID', message: /x is int4; opset 13 allows int8, uint8, int32/ });
  t.match(inferError({ opType: 'DequantizeLinear', opset: 21, attributes: { axis: 1, block_size: 2 }, inputs: [randomInts('uint8', [2, 3], 57, 0, 1), randomTensor([2, 2], 58), randomInts('uint8', [2, 3], 59, 0, 1)] }),
    { code: 'EDGERUN_ERR_SHAPE', message: /zero point dims \[2,3\] differ from scale dims \[2,2\]/ });
});

t.test('MatMulInteger with a constant B keeps it packed (4 bytes per word) and uses dot4U8Packed when the adapter has it', async (t) => {
  const { caps } = await testDevice();
  const c: SingleOpCase = { opType: 'MatMulInteger', opset: 10, inputs: [randomInts('uint8', [4, 64], 60, 0, 255), randomInts('int8', [64, 32], 61, -128, 127)], constantInputs: [1] };
  const { programs } = await buildSingleOp(c);
  const constantBytes = programs.flatMap((p) => p.bindings).reduce((sum, b) => sum + (b.kind === 'constant' ? b.data.byteLength : 0), 0);
  t.ok(constantBytes <= 64 * 32 + 32 * 8 + 64, `constants ${constantBytes} B: the int8 weights packed, plus per-column sums`);
  t.equal(programs[0].label.includes('dot4'), caps.features.has('wgsl:packed_4x8_integer_dot_product'), programs[0].label);
});

t.test('Q/DQ nodes of one structure share a pipeline on CPU adapters and get their shapes baked on GPUs', async (t) => {
  const dq = (dims: number[], isCpu: boolean): SingleOpCase => ({
    opType: 'DequantizeLinear', opset: 13, device: { isCpu },
    inputs: [randomInts('uint8', dims, 70, 0, 255), randomTensor([dims[1]], 71, 0.01, 0.1), randomInts('uint8', [dims[1]], 72, 0, 255)], constantInputs: [1, 2],
  });
  const key = async (c: SingleOpCase) => (await buildSingleOp(c)).programs[0].key;
  t.equal(await key(dq([2, 3, 4], true)), await key(dq([5, 7, 2], true)), 'one CPU pipeline for both shapes');
  t.not(await key(dq([2, 3, 4], false)), await key(dq([5, 7, 2], false)), 'GPU keys name the baked shapes');
  const [gpu] = await runSingleOpOnGpu(dq([5, 7, 2], true));
  t.equal(difference(gpu, foldCase(dq([5, 7, 2], true))[0], EXACT), null, 'the params-driven kernel computes the same values');
});
