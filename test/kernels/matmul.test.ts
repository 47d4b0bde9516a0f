/**
 * MatMul on the real adapter against onnxruntime. Every case runs through each kernel (the CPU adapters'
 * small- and large-problem kernels, forced past the size-based pick, and the GPU shared-memory tiling,
 * forced with isCpu) so all of them are checked here.
 *
 * Error bound: each output is an f32 dot product of K terms; a recursive f32 sum is within
 * γ_K·Σ|a_k·b_k| (γ_K ≈ K·2^-24) of the exact value, whatever the order. Two implementations summing in
 * different orders are therefore within 2·(K+1)·2^-24·Σ|a_k·b_k| of each other (the +1 covers the final
 * rounding); Σ|a_k·b_k| is computed per output in float64 below.
 */
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { buildSingleOp, opContextFor, randomTensor, runBoth, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Epilogue, KernelProgram } from '../../daemon/kernels/types.ts';
import type { CpuKernelChoice } from '../../daemon/kernels/matmul.ts';
import { withCpuMatmulKernel } from '../helpers/matmul-kernel-choice.ts';

const U = 2 ** -24;

/** Σ_k |a[..,m,k]|·|b[..,k,n]| per output of an ONNX MatMul (1-D promotion and batch broadcasting included). */
function absMatMul(a: Tensor, b: Tensor): { sums: Float64Array; K: number } {
  const aShape = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bShape = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const [M, K] = aShape.slice(-2);
  const N = bShape[bShape.length - 1];
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (s: number[]) => [...Array(rank - s.length).fill(1), ...s];
  const pa = pad(aBatch);
  const pb = pad(bBatch);
  const batch = pa.map((x, i) => Math.max(x, pb[i]));
  const count = batch.reduce((x, y) => x * y, 1);
  const sums = new Float64Array(count * M * N);
  for (let bi = 0; bi < count; bi++) {
    let rest = bi;
    let aOff = 0;
    let bOff = 0;
    let aStride = M * K;
    let bStride = K * N;
    for (let d = rank - 1; d >= 0; d--) {
      const coord = rest % batch[d];
      rest = Math.floor(rest / batch[d]);
      if (pa[d] !== 1) aOff += coord * aStride;
      if (pb[d] !== 1) bOff += coord * bStride;
      aStride *= pa[d];
      bStride *= pb[d];
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += Math.abs(a.data[aOff + m * K + k]) * Math.abs(b.data[bOff + k * N + n]);
        sums[(bi * M + m) * N + n] = s;
      }
    }
  }
  return { sums, K };
}

/** The first element outside the dot-product bound, or null. */
function outsideBound(actual: Tensor, expected: Tensor, sums: Float64Array, K: number, extraRel = 0): string | null {
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] vs [${expected.dims}]`;
  for (let i = 0; i < expected.data.length; i++) {
    const bound = 2 * (K + 1) * U * sums[i] + extraRel * Math.abs(expected.data[i]);
    const diff = Math.abs(actual.data[i] - expected.data[i]);
    if (!(diff <= bound)) return `element ${i}: ${actual.data[i]} vs ${expected.data[i]} (|diff| ${diff} > bound ${bound})`;
  }
  return null;
}

interface MatMulCase {
  name: string;
  a: number[];
  b: number[];
  constantB: boolean;
  opset?: number;
}

const CASES: MatMulCase[] = [
  // the PP-OCRv4 rec model's MatMuls (opset 9), with the shapes they see for a 1×3×48×320 input
  { name: 'rec QKV projection [1,40,120]·W[120,360]', a: [1, 40, 120], b: [120, 360], constantB: true, opset: 9 },
  { name: 'rec attention scores [1,8,40,15]·[1,8,15,40]', a: [1, 8, 40, 15], b: [1, 8, 15, 40], constantB: false, opset: 9 },
  { name: 'rec attention values [1,8,40,40]·[1,8,40,15]', a: [1, 8, 40, 40], b: [1, 8, 40, 15], constantB: false, opset: 9 },
  { name: 'rec MLP down [1,40,240]·W[240,120]', a: [1, 40, 240], b: [240, 120], constantB: true, opset: 9 },
  { name: 'rec classifier [1,40,120]·W[120,6625]', a: [1, 40, 120], b: [120, 6625], constantB: true, opset: 9 },
  { name: '1-D A (GEMV) [64]·W[64,33]', a: [64], b: [64, 33], constantB: true },
  { name: '1-D B [7,5]·[5]', a: [7, 5], b: [5], constantB: false },
  { name: 'both 1-D [5]·[5]', a: [5], b: [5], constantB: false },
  { name: 'GEMV with odd K and N [1,37]·[37,10]', a: [1, 37], b: [37, 10], constantB: false },
  { name: 'batched GEMV [2,1,64]·[2,64,16]', a: [2, 1, 64], b: [2, 64, 16], constantB: false },
  { name: 'batch broadcast [3,1,6,5]·[2,5,7]', a: [3, 1, 6, 5], b: [2, 5, 7], constantB: false },
  { name: '2-D A with batched B [6,5]·[3,5,7]', a: [6, 5], b: [3, 5, 7], constantB: false },
  { name: 'batched constant B [2,6,8]·W[2,8,12]', a: [2, 6, 8], b: [2, 8, 12], constantB: true },
  { name: 'K tail with vec4 B [9,13]·[13,8]', a: [9, 13], b: [13, 8], constantB: false },
  { name: 'multiple 64-tiles [70,33]·[33,130]', a: [70, 33], b: [33, 130], constantB: false },
  { name: 'empty M [0,4]·[4,3]', a: [0, 4], b: [4, 3], constantB: false },
  { name: 'empty K gives zeros [3,0]·W[0,4]', a: [3, 0], b: [0, 4], constantB: true },
];

/** The kernels a case runs through: both CPU-adapter kernels (small- and large-problem) and the GPU tiling. */
const KERNELS: { name: string; isCpu: boolean; choice: CpuKernelChoice }[] = [
  { name: 'CPU small-problem kernel', isCpu: true, choice: 'small' },
  { name: 'CPU large-problem kernel', isCpu: true, choice: 'large' },
  { name: 'GPU shared-memory tiling', isCpu: false, choice: 'auto' },
];

t.test('MatMul matches onnxruntime within the f32 dot-product bound', async (t) => {
  let seed = 1;
  for (const c of CASES) {
    for (const kernel of KERNELS) {
      const a = randomTensor(c.a, seed++);
      const b = randomTensor(c.b, seed++);
      const single: SingleOpCase = { opType: 'MatMul', opset: c.opset ?? 13, inputs: [a, b], constantInputs: c.constantB ? [1] : [], device: { isCpu: kernel.isCpu } };
      const { gpu, ort } = await withCpuMatmulKernel(kernel.choice, () => runBoth(single));
      const { sums, K } = absMatMul(a, b);
      t.equal(outsideBound(gpu[0], ort[0], sums, K), null, `${c.name} (${kernel.name})`);
    }
  }
});

t.test('MatMul applies a fused epilogue to every output before the store', async (t) => {
  // Relu(x + 0.25): 1-Lipschitz, so the dot-product bound carries over, plus one rounding of the add
  const epilogue: Epilogue = {
    steps: [
      { opType: 'Add', args: [{ input: 0 }, { literal: 0.25 }], attributes: {}, dtype: 'float32' },
      { opType: 'Relu', args: [{ step: 0 }], attributes: {}, dtype: 'float32' },
    ],
    result: 1,
  };
  for (const [aShape, bShape] of [[[10, 12], [12, 9]], [[1, 16], [16, 6]], [[6, 8], [8, 12]]]) {
    for (const kernel of KERNELS) {
      const a = randomTensor(aShape, 7);
      const b = randomTensor(bShape, 8);
      const { gpu, ort } = await withCpuMatmulKernel(kernel.choice, () => runBoth({ opType: 'MatMul', inputs: [a, b], constantInputs: [1], epilogue, device: { isCpu: kernel.isCpu } }));
      const expected: Tensor = { ...ort[0], data: ort[0].data.map((v) => Math.max(Math.fround(v + 0.25), 0)) };
      const { sums, K } = absMatMul(a, b);
      t.equal(outsideBound(gpu[0], expected, sums, K, U), null, `[${aShape}]·[${bShape}] ${kernel.name}`);
    }
  }
});

t.test('MatMul specialises on layout: constant B is repacked for vec4 loads, keys name what the code depends on', async (t) => {
  const make = (b: number[], constantB: boolean, isCpu = true) => buildSingleOp({
    opType: 'MatMul', inputs: [randomTensor([8, 12], 1), randomTensor(b, 2)], constantInputs: constantB ? [1] : [], device: { isCpu },
  });
  const constant = (await make([12, 10], true)).programs[0];
  t.match(constant.code, /var<storage, read> b4: array<vec4<f32>>/, 'constant B with N=10 is read as vec4 after padding');
  t.equal(constant.bindings[1].kind, 'constant', 'the repacked B is bound as build-time data');
  const dynamic = (await make([12, 10], false)).programs[0];
  t.match(dynamic.code, /var<storage, read> b: array<f32>/, 'dynamic B with N=10 falls back to scalar loads');
  const again = (await make([12, 10], false)).programs[0];
  t.equal(again.key, dynamic.key, 'equal problems give equal keys');
  t.equal(again.code, dynamic.code, 'equal keys give identical code');
  const gpuTiling = (await make([12, 10], false, false)).programs[0];
  t.not(gpuTiling.key, dynamic.key, 'the tiling is part of the key');
  t.not((await make([12, 10], false, false)).programs[0].key, (await make([12, 14], false, false)).programs[0].key, 'GPU kernels bake N: a different N gives a different key');
  const gemv = (await buildSingleOp({ opType: 'MatMul', inputs: [randomTensor([1, 1024], 1), randomTensor([1024, 2048], 2)], constantInputs: [1] })).programs[0];
  t.match(gemv.label, /gemv/, 'a large M == 1 problem takes the GEMV kernel');
});

t.test('MatMul on CPU adapters: problems of the same structure share one pipeline, shapes travel in a params buffer', async (t) => {
  const build = async (a: number[], b: number[], constantB = true) => (await buildSingleOp({
    opType: 'MatMul', inputs: [randomTensor(a, 1), randomTensor(b, 2)], constantInputs: constantB ? [1] : [], device: { isCpu: true },
  })).programs[0];
  const params = (program: KernelProgram) => {
    const binding = program.bindings[program.bindings.length - 1];
    return binding.kind === 'constant' ? Array.from(binding.data) : [];
  };
  const qkv = await build([1, 40, 120], [120, 360]);
  const mlp = await build([1, 40, 240], [240, 120]);
  t.equal(mlp.key, qkv.key, 'the rec model\'s 40×120×360 and 40×240×120 projections share a key');
  t.equal(mlp.code, qkv.code, 'and identical code');
  t.same(params(qkv).slice(0, 3), [40, 360, 120], 'M, N, K of one problem');
  t.same(params(mlp).slice(0, 3), [40, 120, 240], 'M, N, K of the other');
  t.notMatch(qkv.code, /\b(40|120|360)u\b/, 'no shape is baked into the code');
  const unaligned = await build([1, 40, 120], [120, 122]);
  t.not(unaligned.key, qkv.key, 'N not a multiple of 4 (guarded scalar stores) is another structure');
  const classifier = await build([1, 40, 120], [120, 6625]);
  t.match(classifier.label, /cpu-4x4k4/, 'a large problem takes the 4×4 tiling with K advancing by 4');
  t.match(qkv.label, /cpu-4x4k1/, 'a small one the compact kernel');
  const scores = await build([1, 8, 40, 15], [1, 8, 15, 40], false);
  t.match(scores.code, /batch \* sa\.z/, 'contiguous batches read their stride from the params');
  const broadcast = await build([3, 1, 6, 5], [2, 5, 7], false);
  t.match(broadcast.key, /\[3,2\]s\[/, 'broadcast batch dims are baked and named by the key');
});

t.test('MatMul rejects inconsistent inputs with coded errors', async (t) => {
  const infer = (c: SingleOpCase) => () => findOp('', 'MatMul')!.infer(opContextFor(c));
  const f = (dims: number[]) => randomTensor(dims, 1);
  await expectEdgerunError(t, infer({ opType: 'MatMul', inputs: [f([3, 4]), f([5, 6])] }), 'EDGERUN_ERR_SHAPE', /matmul_under_test/, /inner dimensions/);
  await expectEdgerunError(t, infer({ opType: 'MatMul', inputs: [f([2, 3, 4]), f([3, 4, 6])] }), 'EDGERUN_ERR_SHAPE', /batch dimensions/);
  await expectEdgerunError(t, infer({ opType: 'MatMul', inputs: [f([]), f([3])] }), 'EDGERUN_ERR_SHAPE', /scalar/);
  await expectEdgerunError(t, infer({ opType: 'MatMul', inputs: [f([3, 4])] }), 'EDGERUN_ERR_SHAPE', /2 inputs/);
  const ints = { dtype: 'int32' as const, dims: [2, 2], data: Int32Array.from([1, 2, 3, 4]) };
  await expectEdgerunError(t, infer({ opType: 'MatMul', inputs: [ints, ints] }), 'EDGERUN_ERR_UNSUPPORTED_OP', /int32/);
});
