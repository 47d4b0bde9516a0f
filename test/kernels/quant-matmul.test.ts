import * as ort from 'onnxruntime-node';
import t from 'tap';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { packInt4 } from '../../daemon/quant/packing.ts';
import { floatTensor, intTensor, randomTensor, runSingleOpOnGpu, seededRandom, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { difference, foldCase, type Tolerance } from '../helpers/op-compare.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';

/*
 * The fused kernel sums x·(q - z) per block and then scales; onnxruntime dequantizes first and runs an f32
 * GEMM. Both are f32 sums of up to K terms of magnitude ≤ 1·15·0.2 in different orders: 1e-4 covers it.
 * onnxruntime's default graph optimizations rewrite DequantizeLinear → MatMul into kernels that quantize A as
 * well (results off by ~1%), so the oracle runs the graph as written (optimizations disabled).
 */
const SUM_ORDER: Tolerance = { abs: 1e-4, rel: 1e-4 };

function randomInts(dtype: DType, dims: number[], seed: number, lo: number, hi: number): Tensor {
  const rand = seededRandom(seed);
  const count = dims.reduce((a, b) => a * b, 1);
  return intTensor(dtype, dims, Array.from({ length: count }, () => lo + Math.floor(rand() * (hi - lo + 1))));
}

const RANGES: Record<string, [number, number]> = { int4: [-8, 7], uint4: [0, 15], int8: [-128, 127], uint8: [0, 255] };

interface QCase {
  name: string;
  dtype: 'int4' | 'uint4' | 'int8' | 'uint8';
  layout: 'tensor' | 'column' | 'block';
  block?: number;
  M: number;
  K: number;
  N: number;
  zeroPoint: boolean;
  device?: SingleOpCase['device'];
}

function qcase(c: QCase, seed: number): { op: SingleOpCase; model: Uint8Array; a: Tensor } {
  const [lo, hi] = RANGES[c.dtype];
  const q = randomInts(c.dtype, [c.K, c.N], seed, lo, hi);
  const scaleDims = c.layout === 'tensor' ? [] : c.layout === 'column' ? [c.N] : [Math.ceil(c.K / c.block!), c.N];
  const scale = randomTensor(scaleDims, seed + 1, 0.01, 0.2);
  const zero = c.zeroPoint ? randomInts(c.dtype, scaleDims, seed + 2, lo, hi) : null;
  const a = randomTensor([c.M, c.K], seed + 3, -1, 1);
  const attributes = { axis: c.layout === 'block' ? 0 : 1, block_size: c.layout === 'block' ? c.block! : 0 };
  const opset = c.dtype.endsWith('4') || c.layout === 'block' ? 21 : 13;
  const builder = new ModelBuilder({ opset })
    .input('a', 'float32', [c.M, c.K])
    .initializer('q', c.dtype, q.dims, q.data)
    .initializer('scale', 'float32', scale.dims, scale.data);
  if (zero) builder.initializer('zero', c.dtype, zero.dims, zero.data);
  const model = builder
    .node('DequantizeLinear', ['q', 'scale', ...(zero ? ['zero'] : [])], ['w'], opset >= 21 ? attributes : { axis: attributes.axis })
    .node('MatMul', ['a', 'w'], ['y'])
    .output('y', 'float32', [c.M, c.N])
    .toBytes();
  const op: SingleOpCase = {
    opType: 'QMatMul', domain: 'edgerun', inputs: [a, q, scale, zero], constantInputs: [1, 2, 3], attributes,
    ...(c.device ? { device: c.device } : {}),
  };
  return { op, model, a };
}

const cases: QCase[] = [
  { name: 'int4 group 32, GEMV, K = 70 (not a multiple of the block), N = 13 (not a whole word)', dtype: 'int4', layout: 'block', block: 32, M: 1, K: 70, N: 13, zeroPoint: false },
  { name: 'uint4 group 16 with zero points, M = 5 (not a multiple of the row tile)', dtype: 'uint4', layout: 'block', block: 16, M: 5, K: 48, N: 16, zeroPoint: true },
  { name: 'int8 per column with zero points, odd K', dtype: 'int8', layout: 'column', M: 3, K: 37, N: 10, zeroPoint: true },
  { name: 'uint8 per tensor GEMV', dtype: 'uint8', layout: 'tensor', M: 1, K: 64, N: 9, zeroPoint: true },
  { name: 'int4 per column without zero points', dtype: 'int4', layout: 'column', M: 8, K: 33, N: 24, zeroPoint: false },
  { name: 'GPU split-K GEMV, int4 group 32', dtype: 'int4', layout: 'block', block: 32, M: 1, K: 100, N: 40, zeroPoint: true, device: { isCpu: false } },
  { name: 'GPU row tiling, uint8 group 16', dtype: 'uint8', layout: 'block', block: 16, M: 6, K: 40, N: 12, zeroPoint: true, device: { isCpu: false } },
];

cases.forEach((c, i) => {
  t.test(`QMatMul ${c.name} matches onnxruntime's DequantizeLinear → MatMul`, async (t) => {
    const { op, model, a } = qcase(c, 100 + 10 * i);
    const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
    const expected = (await session.run({ a: new ort.Tensor('float32', a.data as Float32Array, a.dims) })).y;
    const oracle: Tensor = { dtype: 'float32', dims: [...expected.dims], data: expected.data as Float32Array };
    const [gpu] = await runSingleOpOnGpu(op);
    t.equal(difference(gpu, oracle, SUM_ORDER), null, 'GPU');
    t.equal(difference(foldCase(op)[0], oracle, SUM_ORDER), null, 'fold');
  });
});

function nbitsCase(M: number, K: number, N: number, blockSize: number, zeroPoints: boolean, bias: boolean, seed: number) {
  const blocks = Math.ceil(K / blockSize);
  const nibbles = randomInts('uint4', [N * blocks * blockSize], seed, 0, 15);
  const b = intTensor('uint8', [N, blocks, blockSize / 2], [...packInt4(nibbles.data, false)]);
  const scales = randomTensor([N * blocks], seed + 1, 0.01, 0.2);
  const zeros = zeroPoints ? intTensor('uint8', [N * Math.ceil(blocks / 2)], [...packInt4(randomInts('uint4', [N * Math.ceil(blocks / 2) * 2], seed + 2, 0, 15).data, false)]) : null;
  const biasTensor = bias ? randomTensor([N], seed + 3) : null;
  const a = randomTensor([M, K], seed + 4, -1, 1);
  const attributes = { K, N, bits: 4, block_size: blockSize };
  const inputs = ['a', 'b', 'scales', zeros ? 'zeros' : '', '', biasTensor ? 'bias' : ''];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const builder = new ModelBuilder({ opset: 21, domains: { 'com.microsoft': 1 } })
    .input('a', 'float32', [M, K])
    .initializer('b', 'uint8', b.dims, b.data)
    .initializer('scales', 'float32', scales.dims, scales.data);
  if (zeros) builder.initializer('zeros', 'uint8', zeros.dims, zeros.data);
  if (biasTensor) builder.initializer('bias', 'float32', biasTensor.dims, biasTensor.data);
  const model = builder.node('MatMulNBits', inputs, ['y'], attributes, { domain: 'com.microsoft' }).output('y', 'float32', [M, N]).toBytes();
  const op: SingleOpCase = {
    opType: 'MatMulNBits', domain: 'com.microsoft', attributes,
    inputs: [a, b, scales, zeros, null, biasTensor].slice(0, inputs.length),
    constantInputs: [1, 2, 3, 5],
  };
  return { op, model, a };
}

for (const [name, M, K, N, block, zeros, bias] of [
  ['GEMV, default zero point 8, K not a multiple of the block', 1, 80, 12, 32, false, false],
  ['M = 3 with packed zero points (odd block count) and bias', 3, 96, 20, 32, true, true],
] as const) {
  t.test(`MatMulNBits ${name} matches onnxruntime`, async (t) => {
    const { op, model, a } = nbitsCase(M, K, N, block, zeros, bias, 300 + K);
    const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
    const expected = (await session.run({ a: new ort.Tensor('float32', a.data as Float32Array, a.dims) })).y;
    const oracle: Tensor = { dtype: 'float32', dims: [...expected.dims], data: expected.data as Float32Array };
    const [gpu] = await runSingleOpOnGpu(op);
    t.equal(difference(gpu, oracle, SUM_ORDER), null, 'GPU');
    t.equal(difference(foldCase(op)[0], oracle, SUM_ORDER), null, 'fold');
  });
}

t.test('QMatMul rejects scales that fit neither per-column nor K-blocked layouts, naming the node', async (t) => {
  const q = randomInts('int4', [8, 4], 1, -8, 7);
  const op: SingleOpCase = { opType: 'QMatMul', domain: 'edgerun', inputs: [randomTensor([1, 8], 2), q, randomTensor([3, 4], 3)], constantInputs: [1, 2], attributes: { axis: 0, block_size: 4 } };
  await t.rejects(runSingleOpOnGpu(op), { code: 'EDGERUN_ERR_SHAPE', message: /qmatmul_under_test.*block_size 4 along axis 0/ });
  const rowScales: SingleOpCase = { ...op, inputs: [randomTensor([1, 8], 2), q, floatTensor([8], [1, 1, 1, 1, 1, 1, 1, 1])], attributes: { axis: 0, block_size: 0 } };
  await t.rejects(runSingleOpOnGpu(rowScales), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /qmatmul_under_test.*axis 0/ });
});
