import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { checkCase, EXACT, type Tolerance } from '../helpers/op-compare.ts';

/*
 * Error bounds. Arithmetic, comparisons, selects, casts and integer ops are exact (one IEEE f32 operation or
 * none). Transcendental builtins on lavapipe (exp, log, sin, cos, pow) are within a few ulp, and onnxruntime's
 * own vectorised approximations (MLAS exp, tanh, logistic, erf) differ from the exact value by a few ulp too:
 * 4 ulp relative plus a tiny absolute floor for results near 0. Erf/Gelu use an approximation with
 * 1.5e-7 absolute error. Fold computes in double and rounds once, so it is exact up to onnxruntime's own ulps.
 */
const ULPS: Tolerance = { abs: 1e-7, rel: 5e-7 };
const ERF: Tolerance = { abs: 4e-7, rel: 5e-7 };
// Vulkan allows log() an absolute error of 2^-21 on [0.5, 2], which softplus (log(1 + e^x)) hits for every x < 0
const LOG_NEAR_ONE: Tolerance = { abs: 1e-6, rel: 1e-6 };
// tanh-approximated Gelu cancels in 1 + tanh(…) for negative x: the error is about 0.5·|x|·(a few ulp of 1)
const GELU_TANH: Tolerance = { abs: 6e-7, rel: 5e-7 };

interface Case {
  name: string;
  c: SingleOpCase;
  tolerance?: Tolerance;
}

const odd = [2, 3, 5];
const aligned = [4, 8];
const unaryFloat: [string, number, number, Tolerance, Record<string, number | string | { float: number }>?][] = [
  ['Relu', -3, 3, EXACT], ['LeakyRelu', -3, 3, EXACT, { alpha: { float: 0.1 } }], ['ThresholdedRelu', -3, 3, EXACT, { alpha: { float: 0.5 } }],
  ['Sigmoid', -12, 12, ULPS], ['HardSigmoid', -4, 4, ULPS], ['HardSwish', -5, 5, ULPS],
  ['Tanh', -12, 12, ULPS], ['Tanh', -0.01, 0.01, ULPS], ['Erf', -4, 4, ERF], ['Gelu', -4, 4, ERF],
  ['Gelu', -4, 4, GELU_TANH, { approximate: 'tanh' }], ['Exp', -10, 10, ULPS], ['Log', 0.01, 100, ULPS], ['Sqrt', 0, 100, ULPS],
  ['Reciprocal', 0.1, 10, EXACT], ['Neg', -3, 3, EXACT], ['Abs', -3, 3, EXACT], ['Floor', -3, 3, EXACT], ['Ceil', -3, 3, EXACT],
  ['Round', -3, 3, EXACT], ['Sin', -6, 6, ULPS], ['Cos', -6, 6, ULPS], ['Sign', -3, 3, EXACT], ['Softplus', -30, 30, LOG_NEAR_ONE],
  ['Softsign', -5, 5, ULPS], ['Elu', -4, 4, ULPS, { alpha: { float: 0.7 } }], ['Selu', -4, 4, ULPS], ['Celu', -4, 4, ULPS, { alpha: { float: 1.5 } }],
  ['Mish', -6, 6, LOG_NEAR_ONE], ['Tan', -1.5, 1.5, ULPS], ['Asin', -1, 1, ULPS], ['Acos', -1, 1, ULPS], ['Atan', -5, 5, ULPS],
  ['Sinh', -5, 5, ULPS], ['Cosh', -5, 5, ULPS], ['Asinh', -5, 5, LOG_NEAR_ONE], ['Acosh', 1, 10, LOG_NEAR_ONE],
  ['Atanh', -0.99, 0.99, LOG_NEAR_ONE], ['Shrink', -2, 2, EXACT, { lambd: { float: 0.75 }, bias: { float: 0.25 } }],
];

const cases: Case[] = [];
unaryFloat.forEach(([opType, lo, hi, tolerance, attributes], k) => {
  for (const dims of [odd, aligned]) {
    cases.push({ name: `${opType} ${JSON.stringify(attributes ?? {})} on [${dims}] in [${lo}, ${hi}]`, tolerance, c: { opType, opset: opType === 'Gelu' ? 20 : 18, inputs: [randomTensor(dims, 100 + k, lo, hi)], ...(attributes ? { attributes } : {}) } });
  }
});
cases.push({ name: 'Round halves go to even', c: { opType: 'Round', inputs: [floatTensor([8], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 1e8])] } });

// binary float ops over broadcast shapes: no broadcast (vec4 and scalar paths), trailing vector, bias per channel, scalar, both sides
const shapePairs: [number[], number[]][] = [[[3, 4], [3, 4]], [[2, 3, 5], [2, 3, 5]], [[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[1, 8, 4, 4], [8, 1, 1]], [[5], []], [[], [2, 3]], [[3, 1, 5], [1, 4, 1]]];
['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min'].forEach((opType, k) => {
  for (const [a, b] of shapePairs) {
    cases.push({ name: `${opType} [${a}] with [${b}]`, c: { opType, inputs: [randomTensor(a, 10 + k, -2, 2), randomTensor(b, 20 + k, 0.5, 2)] } });
  }
});
cases.push(
  { name: 'Pow with negative bases and integral exponents', tolerance: ULPS, c: { opType: 'Pow', inputs: [floatTensor([6], [-2, -2, 3, 0, 0, 1.5]), floatTensor([6], [3, 2, 0.5, 0, 2, -1.5])] } },
  { name: 'Pow float base, int64 exponent', tolerance: ULPS, c: { opType: 'Pow', inputs: [floatTensor([4], [-2, 1.5, 3, 0.5]), intTensor('int64', [1], [3])] } },
  { name: 'Pow int64 base and exponent', c: { opType: 'Pow', inputs: [intTensor('int64', [4], [-2, 3, 5, 0]), intTensor('int64', [4], [3, 2, 1, 4])] } },
  { name: 'Mod fmod=1 on floats keeps the dividend sign', tolerance: { abs: 1e-6, rel: 0 }, c: { opType: 'Mod', attributes: { fmod: 1 }, inputs: [floatTensor([4], [5.5, -5.5, 5.5, -5.5]), floatTensor([4], [2, 2, -2, -2])] } },
  { name: 'Mod fmod=0 on int64 takes the divisor sign', c: { opType: 'Mod', inputs: [intTensor('int64', [6], [7, -7, 7, -7, 0, 9]), intTensor('int64', [6], [3, 3, -3, -3, 5, 9])] } },
  { name: 'Mod fmod=1 on int32 keeps the dividend sign', c: { opType: 'Mod', attributes: { fmod: 1 }, inputs: [intTensor('int32', [4], [7, -7, 7, -7]), intTensor('int32', [4], [3, 3, -3, -3])] } },
  { name: 'Div on int64 truncates toward zero', c: { opType: 'Div', inputs: [intTensor('int64', [6], [7, -7, 7, -7, 1, -1]), intTensor('int64', [6], [2, 2, -2, -2, 3, 3])] } },
  { name: 'Add/Mul on int32 broadcast', c: { opType: 'Mul', inputs: [intTensor('int32', [2, 3], [1, -2, 3, 4, 5, -6]), intTensor('int32', [3], [7, 8, -9])] } },
  { name: 'Sub on int64 scalar', c: { opType: 'Sub', inputs: [intTensor('int64', [], [10]), intTensor('int64', [4], [1, 2, 3, 40])] } },
  { name: 'Max/Min on int64', c: { opType: 'Max', inputs: [intTensor('int64', [4], [1, -5, 3, 0]), intTensor('int64', [4], [-1, -2, 8, 0])] } },
  { name: 'Neg/Abs/Sign on int64', c: { opType: 'Abs', inputs: [intTensor('int64', [4], [-3, 0, 5, -1])] } },
  { name: 'Relu on int32 (opset 14)', c: { opType: 'Relu', opset: 14, inputs: [intTensor('int32', [4], [-3, 0, 5, -1])] } },
  { name: 'PRelu with per-channel slope (unidirectional)', c: { opType: 'PRelu', inputs: [randomTensor([1, 3, 2, 4], 5), randomTensor([3, 1, 1], 6, 0, 0.5)] } },
  { name: 'PRelu with scalar slope', c: { opType: 'PRelu', inputs: [randomTensor([2, 5], 5), floatTensor([1], [0.25])] } },
  { name: 'Not', c: { opType: 'Not', inputs: [intTensor('bool', [4], [1, 0, 0, 1])] } },
  { name: 'And broadcast', c: { opType: 'And', inputs: [intTensor('bool', [2, 2], [1, 0, 1, 1]), intTensor('bool', [2], [1, 0])] } },
  { name: 'Or', c: { opType: 'Or', inputs: [intTensor('bool', [4], [1, 0, 0, 1]), intTensor('bool', [4], [1, 1, 0, 0])] } },
  { name: 'Xor', c: { opType: 'Xor', inputs: [intTensor('bool', [4], [1, 0, 0, 1]), intTensor('bool', [4], [1, 1, 0, 0])] } },
  { name: 'Equal on int64 broadcast', c: { opType: 'Equal', inputs: [intTensor('int64', [2, 3], [1, 2, 3, 3, 2, 1]), intTensor('int64', [3], [1, 2, 1])] } },
  { name: 'Equal on bool', c: { opType: 'Equal', inputs: [intTensor('bool', [4], [1, 0, 0, 1]), intTensor('bool', [4], [1, 1, 0, 0])] } },
  { name: 'Equal on floats', c: { opType: 'Equal', inputs: [floatTensor([4], [1, 2, NaN, 0]), floatTensor([4], [1, 3, NaN, -0])] } },
  ...['Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'].map((opType): Case => ({
    name: `${opType} on floats with a scalar`, c: { opType, inputs: [floatTensor([5], [1, 2, 3, 4, NaN]), floatTensor([], [3])] },
  })),
  { name: 'Less on int32', c: { opType: 'Less', inputs: [intTensor('int32', [4], [1, 2, 3, 4]), intTensor('int32', [4], [4, 2, 2, 5])] } },
  { name: 'Where broadcasting all three', c: { opType: 'Where', inputs: [intTensor('bool', [2, 1], [1, 0]), randomTensor([3], 7), randomTensor([2, 3], 8)] } },
  { name: 'Where on int64 values', c: { opType: 'Where', inputs: [intTensor('bool', [4], [1, 0, 1, 0]), intTensor('int64', [4], [1, 2, 3, 4]), intTensor('int64', [], [-1])] } },
  { name: 'IsNaN', c: { opType: 'IsNaN', inputs: [floatTensor([4], [NaN, 0, Infinity, -1])] } },
  { name: 'IsInf default', c: { opType: 'IsInf', inputs: [floatTensor([4], [NaN, -Infinity, Infinity, -1])] } },
  { name: 'IsInf negative only', c: { opType: 'IsInf', attributes: { detect_positive: 0 }, inputs: [floatTensor([4], [NaN, -Infinity, Infinity, -1])] } },
  { name: 'Cast float to int64 truncates', c: { opType: 'Cast', attributes: { to: 7 }, inputs: [floatTensor([6], [1.7, -1.7, 0.5, -0.5, 1e6, -3])] } },
  { name: 'Cast float to bool', c: { opType: 'Cast', attributes: { to: 9 }, inputs: [floatTensor([4], [0, -0, 0.1, -2])] } },
  { name: 'Cast bool to float', c: { opType: 'Cast', attributes: { to: 1 }, inputs: [intTensor('bool', [3], [1, 0, 1])] } },
  { name: 'Cast int64 to float', c: { opType: 'Cast', attributes: { to: 1 }, inputs: [intTensor('int64', [3], [-7, 0, 123456])] } },
  { name: 'Cast int64 to int32', c: { opType: 'Cast', attributes: { to: 6 }, inputs: [intTensor('int64', [3], [-7, 0, 123456])] } },
  { name: 'Cast int32 to uint8 wraps', c: { opType: 'Cast', attributes: { to: 2 }, inputs: [intTensor('int32', [5], [300, -1, 127, 128, 255])] } },
  { name: 'Cast int32 to int8 wraps', c: { opType: 'Cast', attributes: { to: 3 }, inputs: [intTensor('int32', [5], [300, -1, 127, 128, -129])] } },
  { name: 'Cast float to uint8', c: { opType: 'Cast', attributes: { to: 2 }, inputs: [floatTensor([4], [0, 1.9, 200.5, 255])] } },
  { name: 'Clip with attributes (opset 6)', c: { opType: 'Clip', opset: 6, attributes: { min: { float: -0.5 }, max: { float: 0.25 } }, inputs: [randomTensor([3, 4], 9)] } },
  { name: 'Clip with constant min/max inputs (opset 13)', c: { opType: 'Clip', opset: 13, constantInputs: [1, 2], inputs: [randomTensor([3, 4], 9), floatTensor([], [-0.5]), floatTensor([], [0.25])] } },
  { name: 'Clip with only max (min omitted)', c: { opType: 'Clip', opset: 13, constantInputs: [2], inputs: [randomTensor([3, 4], 9), null, floatTensor([], [0.25])] } },
  { name: 'Clip with run-time min/max (3-input kernel)', c: { opType: 'Clip', opset: 13, inputs: [randomTensor([3, 5], 9), floatTensor([], [-0.5]), floatTensor([], [0.25])] } },
  { name: 'Clip with run-time min only', c: { opType: 'Clip', opset: 13, inputs: [randomTensor([3, 5], 9), floatTensor([], [-0.5])] } },
  { name: 'Clip on int64 with constant bounds', c: { opType: 'Clip', opset: 13, constantInputs: [1, 2], inputs: [intTensor('int64', [5], [-9, -1, 0, 4, 9]), intTensor('int64', [], [-2]), intTensor('int64', [], [5])] } },
  { name: 'Clip without bounds is the identity', c: { opType: 'Clip', opset: 13, inputs: [randomTensor([4], 9)] } },
  { name: 'Sum of three inputs with broadcasting', c: { opType: 'Sum', inputs: [randomTensor([2, 3], 1), randomTensor([3], 2), randomTensor([2, 1], 3)] } },
  { name: 'Sum of one input', c: { opType: 'Sum', inputs: [randomTensor([2, 3], 1)] } },
  { name: 'Mean of three inputs', tolerance: { abs: 0, rel: 2.4e-7 }, c: { opType: 'Mean', inputs: [randomTensor([2, 3], 1), randomTensor([3], 2), randomTensor([2, 3], 3)] } },
  { name: 'Max of three inputs', c: { opType: 'Max', inputs: [randomTensor([4], 1), randomTensor([4], 2), randomTensor([1], 3)] } },
  { name: 'Min of one input', c: { opType: 'Min', inputs: [randomTensor([4], 1)] } },
  { name: 'Shrink on int32', c: { opType: 'Shrink', attributes: { lambd: { float: 1.5 }, bias: { float: 1 } }, inputs: [intTensor('int32', [5], [-3, -1, 0, 2, 5])] } },
  { name: 'BitwiseAnd/Or/Xor on int32 (opset 18)', c: { opType: 'BitwiseXor', opset: 18, inputs: [intTensor('int32', [4], [5, -1, 12, 0]), intTensor('int32', [4], [3, 7, -8, 1])] } },
  { name: 'BitwiseAnd on int64 broadcast', c: { opType: 'BitwiseAnd', opset: 18, inputs: [intTensor('int64', [2, 2], [5, -1, 12, 6]), intTensor('int64', [2], [3, 7])] } },
  { name: 'BitwiseNot on int32', c: { opType: 'BitwiseNot', opset: 18, inputs: [intTensor('int32', [3], [0, -1, 5])] } },
  { name: 'CastLike float to the int64 of input 1', c: { opType: 'CastLike', opset: 15, inputs: [floatTensor([3], [1.5, -2.7, 3]), intTensor('int64', [1], [0])] } },
  { name: 'CastLike int64 to bool', c: { opType: 'CastLike', opset: 15, inputs: [intTensor('int64', [3], [0, 2, -1]), intTensor('bool', [1], [0])] } },
  { name: 'Add on a large aligned tensor', c: { opType: 'Add', inputs: [randomTensor([2, 16, 24, 24], 1), randomTensor([16, 1, 1], 2)] } },
  // an invocation's units cross rows and planes: the coordinate carry chain, scalar and vec4
  { name: 'Add over the middle dim, units crossing rows', c: { opType: 'Add', inputs: [randomTensor([2, 3, 5], 1), randomTensor([1, 3, 1], 2)] } },
  { name: 'Mul spanning the outer and inner dims', c: { opType: 'Mul', inputs: [randomTensor([3, 5, 7], 1), randomTensor([3, 1, 7], 2)] } },
  { name: 'Sub with vec4 units crossing rows', c: { opType: 'Sub', inputs: [randomTensor([3, 6, 4], 1), randomTensor([1, 6, 1], 2)] } },
  { name: 'Where broadcasting all three inputs', c: { opType: 'Where', inputs: [intTensor('bool', [3, 1, 5], [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1]), randomTensor([1, 4, 5], 2), randomTensor([3, 4, 1], 3)] } },
  // GPU adapters bake the shapes instead of reading them from a params buffer
  { name: 'Add over the middle dim, baked shapes', c: { opType: 'Add', inputs: [randomTensor([2, 3, 5], 1), randomTensor([1, 3, 1], 2)], device: { isCpu: false } } },
  { name: 'Sub with vec4 units, baked shapes', c: { opType: 'Sub', inputs: [randomTensor([3, 6, 4], 1), randomTensor([1, 6, 1], 2)], device: { isCpu: false } } },
);

t.test('elementwise ops match onnxruntime on the GPU and when folded', async (t) => {
  for (const { name, c, tolerance } of cases) {
    const problems = await checkCase(c, tolerance ?? EXACT).then((r) => r.problems, (error: Error) => [error.message]);
    t.same(problems, [], name);
  }
});

t.test('the kernel takes the vec4 path exactly when the innermost coalesced dim is a multiple of 4', async (t) => {
  const vec = await buildSingleOp({ opType: 'Add', inputs: [randomTensor([1, 8, 4, 4], 1), randomTensor([8, 1, 1], 2)] });
  t.match(vec.programs[0].code, /array<vec4<f32>>/);
  t.match(vec.programs[0].key, /in:f32\[n,n\]v;f32\[n,1\]\|out:f32w4/, 'dims coalesce to [8,16]: per-channel broadcast over rows of 4 vec4s');
  const params = vec.programs[0].bindings.at(-1)!;
  t.same(params.kind === 'constant' ? Array.from(params.data) : params, [32, 4], 'the params buffer carries the 32 vec4 units in rows of 4');
  const baked = await buildSingleOp({ opType: 'Add', inputs: [randomTensor([1, 8, 4, 4], 1), randomTensor([8, 1, 1], 2)], device: { isCpu: false } });
  t.match(baked.programs[0].key, /out:f32\[8,16\]w4/, 'GPU adapters bake the coalesced shape');
  const scalar = await buildSingleOp({ opType: 'Add', inputs: [randomTensor([2, 3, 5], 1), randomTensor([5], 2)] });
  t.notMatch(scalar.programs[0].code, /vec4/);
  const empty = await buildSingleOp({ opType: 'Relu', inputs: [randomTensor([0, 3], 1)] });
  t.same(empty.programs, [], 'an empty output dispatches nothing');
  t.same(empty.outputs[0].shape, [0, 3]);
});

t.test('on CPU adapters nodes with the same program and broadcast pattern share a pipeline whatever their sizes', async (t) => {
  const seScale = (channels: number, pixels: number) => buildSingleOp({
    opType: 'FusedElementwise', domain: 'edgerun', inputs: [randomTensor([1, channels, 1, pixels], 1), randomTensor([1, channels, 1, 1], 2)],
    attributes: { program: JSON.stringify({ steps: [
      { opType: 'HardSigmoid', args: [{ input: 1 }], attributes: { alpha: 0.2, beta: 0.5 }, dtype: 'float32' },
      { opType: 'Mul', args: [{ input: 0 }, { step: 0 }], attributes: {}, dtype: 'float32' },
    ], result: 1 }) },
  }).then((r) => r.programs[0]);
  const a = await seScale(88, 288);
  const b = await seScale(48, 288);
  const c = await seScale(200, 192);
  t.equal(b.key, a.key);
  t.equal(c.key, a.key);
  t.equal(c.code, a.code, 'one WGSL module for all three');
  t.notMatch(a.code, /\b(88|288|72)u\b/, 'no size is baked into the code');
  const odd = await seScale(24, 25);
  t.not(odd.key, a.key, 'rows that are not a multiple of 4 take the scalar kernel: another pipeline');
});

t.test('equal shapes give equal keys and identical code; different broadcasts give different keys', async (t) => {
  const a = await buildSingleOp({ opType: 'Mul', inputs: [randomTensor([2, 8], 1), randomTensor([8], 2)] });
  const b = await buildSingleOp({ opType: 'Mul', inputs: [randomTensor([2, 8], 3), randomTensor([8], 4)] });
  const c = await buildSingleOp({ opType: 'Mul', inputs: [randomTensor([2, 8], 3), randomTensor([2, 1], 4)] });
  t.equal(a.programs[0].key, b.programs[0].key);
  t.equal(a.programs[0].code, b.programs[0].code);
  t.not(a.programs[0].key, c.programs[0].key);
});

t.test('fusion information: arity and captured attributes', async (t) => {
  const info = (c: SingleOpCase) => findOp('', c.opType)!.elementwise!.fusionAttributes!(opContextFor(c));
  t.same(info({ opType: 'LeakyRelu', attributes: { alpha: { float: 0.2 } }, inputs: [randomTensor([2], 1)] }), { alpha: 0.2 });
  t.same(info({ opType: 'Clip', opset: 13, constantInputs: [1, 2], inputs: [randomTensor([2], 1), floatTensor([], [0]), floatTensor([], [6])] }), { min: 0, max: 6 });
  t.equal(info({ opType: 'Clip', opset: 13, inputs: [randomTensor([2], 1), floatTensor([], [0]), floatTensor([], [6])] }), null, 'run-time bounds cannot be fused');
  t.same(info({ opType: 'Cast', attributes: { to: 7 }, inputs: [randomTensor([2], 1)] }), { to: 7 });
  t.same(info({ opType: 'Max', inputs: [randomTensor([2], 1), randomTensor([2], 2)] }), {});
  t.equal(info({ opType: 'Max', inputs: [randomTensor([2], 1), randomTensor([2], 2), randomTensor([2], 3)] }), null, 'three-input Max is not a fusable step');
  t.equal(findOp('', 'Where')!.elementwise!.arity, 3);
  t.equal(findOp('', 'Clip')!.elementwise!.arity, 1);
  t.equal(findOp('', 'Sum')!.elementwise, undefined);
});

const bad: [string, SingleOpCase, string][] = [
  ['incompatible broadcast', { opType: 'Add', inputs: [randomTensor([2, 3], 1), randomTensor([4], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['mixed dtypes', { opType: 'Add', inputs: [randomTensor([2], 1), intTensor('int64', [2], [1, 2])] }, 'EDGERUN_ERR_SHAPE'],
  ['a float-only op on ints', { opType: 'Exp', inputs: [intTensor('int32', [2], [1, 2])] }, 'EDGERUN_ERR_SHAPE'],
  ['Where with a float condition', { opType: 'Where', inputs: [randomTensor([2], 1), randomTensor([2], 2), randomTensor([2], 3)] }, 'EDGERUN_ERR_SHAPE'],
  ['And on floats', { opType: 'And', inputs: [randomTensor([2], 1), randomTensor([2], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Mod on floats without fmod', { opType: 'Mod', inputs: [randomTensor([2], 1), randomTensor([2], 2)] }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['Cast to string', { opType: 'Cast', attributes: { to: 8 }, inputs: [randomTensor([2], 1)] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['Cast without to', { opType: 'Cast', inputs: [randomTensor([2], 1)] }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['PRelu slope that does not broadcast to X', { opType: 'PRelu', inputs: [randomTensor([3], 1), randomTensor([2, 3], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Clip with a non-scalar bound', { opType: 'Clip', opset: 13, constantInputs: [1], inputs: [randomTensor([3], 1), randomTensor([2], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Add with one input', { opType: 'Add', inputs: [randomTensor([3], 1)] }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['Sum with no inputs', { opType: 'Sum', inputs: [] }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['BitwiseNot on uint8', { opType: 'BitwiseNot', opset: 18, inputs: [intTensor('uint8', [2], [1, 2])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['BitwiseOr on floats', { opType: 'BitwiseOr', opset: 18, inputs: [randomTensor([2], 1), randomTensor([2], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['legacy broadcast with axis', { opType: 'Add', opset: 6, attributes: { broadcast: 1, axis: 1 }, inputs: [randomTensor([2, 3], 1), randomTensor([3], 2)] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
];

t.test('bad inputs are rejected by infer with coded errors naming the node', async (t) => {
  for (const [name, c, code] of bad) {
    t.throws(() => findOp('', c.opType)!.infer(opContextFor(c)), { code, message: /add_under_test|_under_test/ }, name);
  }
});

t.test('integer overflow wraps like int32 on the GPU and in fold', async (t) => {
  const c: SingleOpCase = { opType: 'Mul', inputs: [intTensor('int32', [2], [65536, -65536]), intTensor('int32', [2], [65536, 65537])] };
  const result = await checkCase(c, EXACT);
  t.same(result.problems, []);
  const folded: Tensor = result.fold![0];
  t.same(Array.from(folded.data), [0, -65536]);
});
