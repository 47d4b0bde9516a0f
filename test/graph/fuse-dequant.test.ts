/**
 * The dequantize fusion pass on small models: which nodes become packed-weight kernels (from the compiled
 * plan), that the fused model still matches onnxruntime running the graph as written, that the GPU holds the
 * weights packed (constantBytes against the packed size), and the coded errors of malformed quantized weights.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { compileModel } from '../../daemon/graph/compile.ts';
import { fuseDequantize } from '../../daemon/graph/fuse-dequant.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { packInt4 } from '../../daemon/quant/packing.ts';
import { closeSharedEngine, sharedEngine } from '../helpers/engine-oracle.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { randomTensor, seededRandom } from '../helpers/kernel-harness.ts';
import { floatAttr, ModelBuilder } from '../helpers/onnx-builder.ts';

t.teardown(closeSharedEngine);

const ints = (count: number, seed: number, lo: number, hi: number) => {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => lo + Math.floor(random() * (hi - lo + 1)));
};
const floats = (count: number, seed: number, lo: number, hi: number) => {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => lo + (hi - lo) * random());
};

/**
 * a [4, 64] → DQ(int4, blocks of 32, zero points) → MatMul → Relu → h [4, 48], then three heads:
 * Gemm with an int8 per-column weight, alpha and C; Gemm with transB over an int8 per-row [N, K] weight;
 * MatMulNBits; Gemm with transB, alpha and a scalar C over a uint4 [N, K] weight blocked along K. A
 * DequantizeLinear constant feeding an Add (a bias) is not a weight: it folds.
 */
function quantizedHeads(): Uint8Array {
  return new ModelBuilder({ opset: 21, domains: { 'com.microsoft': 1 } })
    .input('a', 'float32', [4, 64])
    .initializer('q1', 'int4', [64, 48], ints(64 * 48, 1, -8, 7))
    .initializer('s1', 'float32', [2, 48], floats(96, 2, 0.01, 0.1))
    .initializer('z1', 'int4', [2, 48], ints(96, 3, -2, 2))
    .node('DequantizeLinear', ['q1', 's1', 'z1'], ['w1'], { axis: 0, block_size: 32 }, { name: 'dq1' })
    .node('MatMul', ['a', 'w1'], ['m1'], {}, { name: 'matmul1' })
    .node('Relu', ['m1'], ['h'])
    .initializer('q2', 'int8', [48, 20], ints(48 * 20, 4, -127, 127))
    .initializer('s2', 'float32', [20], floats(20, 5, 0.001, 0.01))
    .initializer('c2', 'float32', [20], floats(20, 6, -1, 1))
    .node('DequantizeLinear', ['q2', 's2'], ['w2'], { axis: 1 }, { name: 'dq2' })
    .node('Gemm', ['h', 'w2', 'c2'], ['g2'], { alpha: 0.5, beta: floatAttr(2) }, { name: 'gemm2' })
    .initializer('qb', 'int8', [20], ints(20, 7, -127, 127))
    .initializer('sb', 'float32', [], [0.01])
    .node('DequantizeLinear', ['qb', 'sb'], ['bias'], {}, { name: 'dq_bias' })
    .node('Add', ['g2', 'bias'], ['y1'])
    .initializer('q3', 'uint8', [10, 48], ints(480, 8, 0, 255))
    .initializer('s3', 'float32', [10], floats(10, 9, 0.001, 0.01))
    .initializer('z3', 'uint8', [10], ints(10, 10, 100, 150))
    .node('DequantizeLinear', ['q3', 's3', 'z3'], ['w3'], { axis: 0 }, { name: 'dq3' })
    .node('Gemm', ['h', 'w3'], ['y2'], { transB: 1 }, { name: 'gemm3' })
    .initializer('b4', 'uint8', [8, 3, 8], [...packInt4(ints(8 * 3 * 16, 11, 0, 15), false)])
    .initializer('s4', 'float32', [24], floats(24, 12, 0.01, 0.1))
    .node('MatMulNBits', ['h', 'b4', 's4'], ['y3'], { K: 48, N: 8, bits: 4, block_size: 16 }, { name: 'nbits4', domain: 'com.microsoft' })
    .initializer('q5', 'uint4', [6, 48], ints(6 * 48, 13, 0, 15))
    .initializer('s5', 'float32', [6, 3], floats(18, 14, 0.01, 0.1))
    .initializer('z5', 'uint4', [6, 3], ints(18, 15, 6, 9))
    .initializer('c5', 'float32', [], [0.25])
    .node('DequantizeLinear', ['q5', 's5', 'z5'], ['w5'], { axis: 1, block_size: 16 }, { name: 'dq5' })
    .node('Gemm', ['h', 'w5', 'c5'], ['y4'], { transB: 1, alpha: 1.5 }, { name: 'gemm5' })
    .output('y1', 'float32', [4, 20])
    .output('y2', 'float32', [4, 10])
    .output('y3', 'float32', [4, 8])
    .output('y4', 'float32', [4, 6])
    .toBytes();
}

async function ortAsWritten(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const result = await session.run(Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor('float32', t.data as Float32Array, t.dims)])));
  await session.release();
  return Object.fromEntries(Object.entries(result).map(([name, tensor]) => [name, tensor.data as Float32Array]));
}

t.test('weight DequantizeLinear → MatMul/Gemm and MatMulNBits run as QMatMul with the activation fused, and match onnxruntime', async (t) => {
  const bytes = quantizedHeads();
  const engine = await sharedEngine();
  const model = decodeModel(bytes);
  const compiled = compileModel(model, { inputShapes: new Map([['a', [4, 64]]]), caps: engine.runtime.caps });
  t.equal(compiled.stats.quantizedMatMuls, 5, 'matmul1, gemm2, gemm3, nbits4 and gemm5 run on packed weights');
  t.same(compiled.nodeInfo.filter((n) => n.opType === 'QMatMul').map((n) => n.name).sort(), ['gemm2', 'gemm3', 'gemm5', 'matmul1', 'nbits4']);
  t.notOk(compiled.nodeInfo.some((n) => n.opType === 'DequantizeLinear'), 'no DequantizeLinear is left to run');
  t.notOk(compiled.plan.pipelines.some((p) => /DequantizeLinear/.test(p.label)), 'no dequantize program in the plan');
  t.notOk(compiled.nodeInfo.some((n) => n.opType === 'Relu'), 'the Relu is fused into matmul1');
  t.equal(compiled.stats.fusedEpilogues, 1);

  const a = randomTensor([4, 64], 20);
  const session = await engine.loadModel(model, { inputShapes: new Map([['a', [4, 64]]]) });
  const ours = (await session.run(new Map([['a', a]]))).outputs;
  await session.close();
  const expected = await ortAsWritten(bytes, { a });
  for (const name of ['y1', 'y2', 'y3', 'y4']) {
    const actual = ours.get(name)!.data;
    let maxAbs = 0;
    for (let i = 0; i < actual.length; i++) maxAbs = Math.max(maxAbs, Math.abs(actual[i] - expected[name][i]));
    t.ok(maxAbs <= 1e-4, `${name}: max |Δ| ${maxAbs.toExponential(2)} ≤ 1e-4`);
  }
});

t.test('a weight DequantizeLinear with a non-weight consumer is left to fold', async (t) => {
  const bytes = new ModelBuilder({ opset: 13 })
    .input('a', 'float32', [2, 8])
    .initializer('q', 'int8', [8, 8], ints(64, 30, -127, 127))
    .initializer('s', 'float32', [], [0.02])
    .node('DequantizeLinear', ['q', 's'], ['w'], {}, { name: 'dq_shared' })
    .node('MatMul', ['a', 'w'], ['m'])
    .node('Add', ['m', 'w'], ['y'])
    .output('y', 'float32', [8, 8])
    .toBytes();
  const { graph, quantizedMatMuls } = fuseDequantize(decodeModel(bytes).graph, new Map([['', 13]]));
  t.equal(quantizedMatMuls, 0);
  t.ok(graph.nodes.some((n) => n.name === 'dq_shared'), 'the DequantizeLinear stays (and folds at analysis)');
});

t.test('DequantizeLinear → Conv becomes edgerun.QConv with the contract inputs and the Conv attributes', async (t) => {
  const bytes = new ModelBuilder({ opset: 21 })
    .input('x', 'float32', [1, 4, 6, 6])
    .initializer('q', 'uint4', [8, 4, 3, 3], ints(8 * 36, 40, 0, 15))
    .initializer('s', 'float32', [8, 2, 3, 3], floats(8 * 18, 41, 0.01, 0.1))
    .initializer('z', 'uint4', [8, 2, 3, 3], ints(8 * 18, 42, 6, 9))
    .initializer('b', 'float32', [8], floats(8, 43, -1, 1))
    .node('DequantizeLinear', ['q', 's', 'z'], ['w'], { axis: 1, block_size: 2 })
    .node('Conv', ['x', 'w', 'b'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }, { name: 'conv' })
    .output('y', 'float32', [1, 8, 6, 6])
    .toBytes();
  const { graph, quantizedConvs } = fuseDequantize(decodeModel(bytes).graph, new Map([['', 21]]));
  t.equal(quantizedConvs, 1);
  t.equal(graph.nodes.length, 1);
  const [node] = graph.nodes;
  t.match(node, { name: 'conv', opType: 'QConv', domain: 'edgerun', inputs: ['x', 'q', 's', 'z', 'b'], outputs: ['y'] });
  t.same([...node.attributes.keys()].sort(), ['axis', 'block_size', 'kernel_shape', 'pads']);
  t.same([node.attributes.get('axis'), node.attributes.get('block_size')], [{ type: 'int', value: 1 }, { type: 'int', value: 2 }]);

  const engine = await sharedEngine();
  const x = randomTensor([1, 4, 6, 6], 44);
  const session = await engine.loadModel(decodeModel(bytes), { inputShapes: new Map([['x', [1, 4, 6, 6]]]) });
  const ours = (await session.run(new Map([['x', x]]))).outputs.get('y')!.data;
  await session.close();
  const expected = (await ortAsWritten(bytes, { x })).y;
  let maxAbs = 0;
  for (let i = 0; i < ours.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ours[i] - expected[i]));
  t.ok(maxAbs <= 1e-4, `the compiled QConv matches onnxruntime: max |Δ| ${maxAbs.toExponential(2)} ≤ 1e-4`);
});

t.test('static activation QuantizeLinear → DequantizeLinear becomes arithmetic fused into the producing conv, matching onnxruntime', async (t) => {
  const bytes = new ModelBuilder({ opset: 21 })
    .input('x', 'float32', [1, 3, 6, 6])
    .initializer('w0', 'float32', [4, 3, 3, 3], floats(108, 80, -0.5, 0.5))
    .node('Conv', ['x', 'w0'], ['c0'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }, { name: 'conv0' })
    .node('Relu', ['c0'], ['r0'])
    .initializer('sa', 'float32', [], [0.02])
    .initializer('za', 'uint8', [], [3])
    .node('QuantizeLinear', ['r0', 'sa', 'za'], ['q0'], {}, { name: 'quantize_act' })
    .node('DequantizeLinear', ['q0', 'sa', 'za'], ['d0'], {}, { name: 'dequantize_act' })
    .initializer('qw', 'int8', [5, 4, 1, 1], ints(20, 81, -127, 127))
    .initializer('sw', 'float32', [5], floats(5, 82, 0.001, 0.01))
    .node('DequantizeLinear', ['qw', 'sw'], ['w1'], { axis: 0 })
    .node('Conv', ['d0', 'w1'], ['y'], { kernel_shape: [1, 1] }, { name: 'conv1' })
    .output('y', 'float32', [1, 5, 6, 6])
    .toBytes();
  const engine = await sharedEngine();
  const model = decodeModel(bytes);
  const compiled = compileModel(model, { inputShapes: new Map([['x', [1, 3, 6, 6]]]), caps: engine.runtime.caps });
  t.equal(compiled.stats.activationQdqPairs, 1);
  t.same(compiled.nodeInfo.map((n) => n.opType), ['Conv', 'QConv'], 'Relu, quantize and dequantize all run in conv0\'s epilogue');
  const x = randomTensor([1, 3, 6, 6], 83, 0, 1);
  const session = await engine.loadModel(model, { inputShapes: new Map([['x', [1, 3, 6, 6]]]) });
  const ours = (await session.run(new Map([['x', x]]))).outputs.get('y')!.data;
  await session.close();
  const expected = (await ortAsWritten(bytes, { x })).y;
  let maxAbs = 0;
  for (let i = 0; i < ours.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ours[i] - expected[i]));
  t.ok(maxAbs <= 1e-5, `max |Δ| ${maxAbs.toExponential(2)} ≤ 1e-5`);
});

t.test('an INT4 model occupies about its packed size in GPU memory', async (t) => {
  const K = 512;
  const N = 512;
  const block = 32;
  const builder = new ModelBuilder({ opset: 21 }).input('a', 'float32', [1, K]);
  let input = 'a';
  let packedBytes = 0;
  for (let layer = 0; layer < 3; layer++) {
    builder.initializer(`q${layer}`, 'int4', [K, N], ints(K * N, 50 + layer, -8, 7))
      .initializer(`s${layer}`, 'float32', [K / block, N], floats((K / block) * N, 60 + layer, 0.001, 0.01))
      .node('DequantizeLinear', [`q${layer}`, `s${layer}`], [`w${layer}`], { axis: 0, block_size: block })
      .node('MatMul', [input, `w${layer}`], [`h${layer}`]);
    packedBytes += (K * N) / 2 + (K / block) * N * 4;
    input = `h${layer}`;
  }
  const bytes = builder.output(input, 'float32', [1, N]).toBytes();
  const engine = await sharedEngine();
  const session = await engine.loadModel(decodeModel(bytes), { inputShapes: new Map([['a', [1, K]]]) });
  const report = await session.prepare(new Map([['a', [1, K]]]));
  await session.close();
  const float32Bytes = 3 * K * N * 4;
  t.ok(report.constantBytes <= 1.15 * packedBytes, `GPU constants ${report.constantBytes} B ≤ 1.15 × packed ${packedBytes} B`);
  t.ok(report.constantBytes < float32Bytes / 6, `GPU constants ${report.constantBytes} B < 1/6 of the float32 weights (${float32Bytes} B)`);
});

t.test('float16 scales and biases behind Cast (as edgerun compress stores them) still fuse, match onnxruntime and keep weights packed', async (t) => {
  const [C, M, K, N] = [32, 24, 576, 96];
  const bytes = new ModelBuilder({ opset: 21 })
    .input('x', 'float32', [1, C, 6, 4])
    .initializer('qc', 'int8', [M, C, 3, 3], ints(M * C * 9, 90, -127, 127))
    .initializer('sc_f16', 'float16', [M], floats(M, 91, 0.001, 0.01))
    .initializer('bc_f16', 'float16', [M], floats(M, 92, -2, 2))
    .node('Cast', ['sc_f16'], ['sc'], { to: 1 })
    .node('Cast', ['bc_f16'], ['bc'], { to: 1 })
    .node('DequantizeLinear', ['qc', 'sc'], ['wc'], { axis: 0 })
    .node('Conv', ['x', 'wc', 'bc'], ['c'], { pads: [1, 1, 1, 1] }, { name: 'conv' })
    .initializer('shape', 'int64', [2], [1, K])
    .node('Reshape', ['c', 'shape'], ['flat'])
    .initializer('qm', 'int8', [K, N], ints(K * N, 93, -127, 127))
    .initializer('sm_f16', 'float16', [N], floats(N, 94, 0.001, 0.01))
    .initializer('bm_f16', 'float16', [N], floats(N, 95, -1, 1))
    .node('Cast', ['sm_f16'], ['sm'], { to: 1 })
    .node('Cast', ['bm_f16'], ['bm'], { to: 1 })
    .node('DequantizeLinear', ['qm', 'sm'], ['wm'], { axis: 1 })
    .node('Gemm', ['flat', 'wm', 'bm'], ['y'], {}, { name: 'gemm' })
    .output('y', 'float32', [1, N])
    .toBytes();
  const engine = await sharedEngine();
  const model = decodeModel(bytes);
  const shapes = new Map([['x', [1, C, 6, 4]]]);
  const compiled = compileModel(model, { inputShapes: shapes, caps: engine.runtime.caps });
  t.equal(compiled.stats.quantizedConvs, 1, 'the conv runs on its packed int8 weight');
  t.equal(compiled.stats.quantizedMatMuls, 1, 'the Gemm runs on its packed int8 weight');
  t.notOk(compiled.nodeInfo.some((n) => n.opType === 'DequantizeLinear' || n.opType === 'Cast'), 'no DequantizeLinear or Cast is left to run');

  const x = randomTensor([1, C, 6, 4], 96);
  const session = await engine.loadModel(model, { inputShapes: shapes });
  const report = await session.prepare(shapes);
  const ours = (await session.run(new Map([['x', x]]))).outputs.get('y')!.data;
  await session.close();
  const expected = (await ortAsWritten(bytes, { x })).y;
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ours.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(ours[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  t.ok(maxAbs <= 1e-5 * maxRef, `matches onnxruntime (optimizations off): max |Δ| ${maxAbs.toExponential(2)} ≤ 1e-5 × max |y| ${maxRef.toFixed(2)}`);
  const packedBytes = M * C * 9 + K * N + (M + N) * 2 * 4;
  const float32Bytes = (M * C * 9 + K * N) * 4;
  t.ok(report.constantBytes <= 1.15 * packedBytes, `GPU constants ${report.constantBytes} B ≤ 1.15 × packed ${packedBytes} B (no float copy: ${float32Bytes} B)`);
});

t.test('malformed quantized weights are coded errors naming the DequantizeLinear', async (t) => {
  const engine = await sharedEngine();
  const compile = (bytes: Uint8Array) => compileModel(decodeModel(bytes), { inputShapes: new Map([['a', [1, 8]]]), caps: engine.runtime.caps });
  const model = (scaleDims: number[], zeroType: 'int4' | 'int8', blockSize: number) => new ModelBuilder({ opset: 21 })
    .input('a', 'float32', [1, 8])
    .initializer('q', 'int4', [8, 4], ints(32, 70, -8, 7))
    .initializer('s', 'float32', scaleDims, floats(scaleDims.reduce((x, y) => x * y, 1), 71, 0.01, 0.1))
    .initializer('z', zeroType, scaleDims, ints(scaleDims.reduce((x, y) => x * y, 1), 72, -1, 1))
    .node('DequantizeLinear', ['q', 's', 'z'], ['w'], { axis: 0, block_size: blockSize }, { name: 'dq_bad' })
    .node('MatMul', ['a', 'w'], ['y'])
    .output('y', 'float32', [1, 4])
    .toBytes();
  await expectEdgerunError(t, () => compile(model([3, 4], 'int4', 4)), 'EDGERUN_ERR_SHAPE', /dq_bad/, /block_size 4 along axis 0/, /expected \[2,4\]/);
  await expectEdgerunError(t, () => compile(model([2, 4], 'int4', 3)), 'EDGERUN_ERR_SHAPE', /dq_bad/, /block_size 3/, /expected \[3,4\]/);
  await expectEdgerunError(t, () => compile(model([2, 4], 'int8', 4)), 'EDGERUN_ERR_ONNX_INVALID', /dq_bad/, /x_zero_point is int8 but x is int4/);
});
