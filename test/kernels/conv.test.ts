import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Epilogue } from '../../daemon/kernels/types.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import {
  buildSingleOp, compareTensors, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, testDevice, type AttrInput, type SingleOpCase,
} from '../helpers/kernel-harness.ts';

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  attributes?: Record<string, AttrInput>;
  opset?: number;
  /** W and B as graph inputs instead of initializers (exercises the GPU repack program). */
  dynamicWeights?: boolean;
}

// Shapes stay small (lavapipe is slow) but cover every path: pointwise GEMM (vec4 and scalar pixels,
// partial channel tiles), direct conv (padding, strides, dilations, groups, depthwise, 1D, 3D) and the
// exact layer configurations of the PaddleOCR det/rec/cls models.
const cases: ConvCase[] = [
  { name: 'pointwise 16->32, vec4 pixels', x: [1, 16, 8, 8], w: [32, 16, 1, 1], bias: true },
  { name: 'pointwise 6->18 (partial channel tile), odd pixel count', x: [1, 6, 5, 7], w: [18, 6, 1, 1], bias: true },
  { name: 'pointwise batch 2 without bias', x: [2, 12, 4, 6], w: [42, 12, 1, 1] },
  { name: 'pointwise 1D', x: [1, 8, 10], w: [5, 8, 1], bias: true },
  { name: 'squeeze-excitation 1x1 on a 1x1 map (GEMV path, vec4 channels)', x: [1, 24, 1, 1], w: [96, 24, 1, 1], bias: true },
  { name: 'GEMV path: batch 2, 2x2 map, channels not a multiple of 4', x: [2, 10, 2, 2], w: [7, 10, 1, 1], bias: true },
  { name: 'GEMV path without bias, 1D with 3 pixels', x: [1, 8, 3], w: [5, 8, 1] },
  { name: 'det stem 3x3 s2 p1 (3->16)', x: [1, 3, 20, 20], w: [16, 3, 3, 3], attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'depthwise 3x3 s1 p1 (group 16)', x: [1, 16, 9, 11], w: [16, 1, 3, 3], bias: true, attributes: { group: 16, pads: [1, 1, 1, 1] } },
  { name: 'depthwise 3x3 s2 p1 (group 32)', x: [1, 32, 10, 10], w: [32, 1, 3, 3], bias: true, attributes: { group: 32, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'depthwise 5x5 s1 p2 (group 24)', x: [1, 24, 7, 9], w: [24, 1, 5, 5], bias: true, attributes: { group: 24, pads: [2, 2, 2, 2] } },
  { name: 'depthwise 5x5 s2 p2 (group 8)', x: [1, 8, 11, 9], w: [8, 1, 5, 5], bias: true, attributes: { group: 8, strides: [2, 2], pads: [2, 2, 2, 2] } },
  { name: 'rec depthwise 3x3 stride [2,1]', x: [1, 16, 8, 12], w: [16, 1, 3, 3], bias: true, attributes: { group: 16, strides: [2, 1], pads: [1, 1, 1, 1] } },
  { name: 'rec depthwise 3x3 stride [1,2]', x: [1, 16, 6, 12], w: [16, 1, 3, 3], bias: true, attributes: { group: 16, strides: [1, 2], pads: [1, 1, 1, 1] } },
  { name: 'rec 1x3 conv pads [0,1,0,1]', x: [1, 12, 3, 10], w: [6, 12, 1, 3], attributes: { pads: [0, 1, 0, 1] } },
  { name: 'depthwise 3x3 s1 p1 on a width-16 map (vec4 loads, scalar edge columns, vec4 stores)', x: [1, 8, 6, 16], w: [8, 1, 3, 3], bias: true, attributes: { group: 8, pads: [1, 1, 1, 1] } },
  { name: '3x3 s1 p1 on a width-16 map (vec4 paths, partial row tiles)', x: [1, 8, 5, 20], w: [6, 8, 3, 3], bias: true, attributes: { pads: [1, 1, 1, 1] } },
  { name: 'det neck 3x3 p1 (24->6)', x: [1, 24, 9, 9], w: [6, 24, 3, 3], attributes: { pads: [1, 1, 1, 1] } },
  { name: '1x1 with stride 2 (direct path)', x: [1, 8, 9, 9], w: [12, 8, 1, 1], bias: true, attributes: { strides: [2, 2] } },
  { name: 'depthwise multiplier 2 (group 4, 8 outputs)', x: [1, 4, 7, 7], w: [8, 1, 3, 3], bias: true, attributes: { group: 4, pads: [1, 1, 1, 1] } },
  { name: 'grouped 3x3 (group 2, 4 in / 6 out per group)', x: [1, 8, 6, 6], w: [12, 4, 3, 3], bias: true, attributes: { group: 2, pads: [1, 0, 1, 0] } },
  { name: 'dilation 2 with asymmetric pads', x: [1, 5, 10, 9], w: [7, 5, 3, 3], attributes: { dilations: [2, 2], pads: [2, 1, 0, 2] } },
  { name: 'auto_pad SAME_UPPER stride 2 (odd total pad)', x: [1, 4, 8, 8], w: [5, 4, 3, 3], attributes: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { name: 'auto_pad SAME_LOWER stride 2 (odd total pad)', x: [1, 4, 8, 8], w: [5, 4, 3, 3], attributes: { auto_pad: 'SAME_LOWER', strides: [2, 2] } },
  { name: 'auto_pad SAME_UPPER stride 2 (even total pad)', x: [1, 4, 8, 7], w: [5, 4, 4, 4], attributes: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { name: 'auto_pad VALID', x: [1, 3, 9, 7], w: [4, 3, 3, 2], attributes: { auto_pad: 'VALID' } },
  { name: 'kernel_shape attribute given explicitly', x: [1, 3, 6, 6], w: [2, 3, 2, 2], attributes: { kernel_shape: [2, 2] } },
  { name: '1D conv stride 2 pads 1', x: [2, 4, 17], w: [6, 4, 3], bias: true, attributes: { strides: [2], pads: [1, 1] } },
  { name: '3D conv 3x3x3 pads 1', x: [1, 3, 5, 6, 4], w: [4, 3, 3, 3, 3], bias: true, attributes: { pads: [1, 1, 1, 1, 1, 1] } },
  { name: 'opset 1 conv', x: [1, 3, 6, 6], w: [4, 3, 3, 3], opset: 1 },
  { name: 'non-constant W and B (GPU repack), direct', x: [1, 6, 7, 7], w: [8, 3, 3, 3], bias: true, dynamicWeights: true, attributes: { group: 2, pads: [1, 1, 1, 1] } },
  { name: 'non-constant W (GPU repack), pointwise', x: [1, 8, 4, 4], w: [8, 8, 1, 1], dynamicWeights: true },
  { name: 'non-constant W and B (GPU repack), GEMV', x: [1, 12, 1, 1], w: [6, 12, 1, 1], bias: true, dynamicWeights: true },
];

function makeCase(c: ConvCase, seed: number, epilogue?: Epilogue, device?: SingleOpCase['device']): SingleOpCase {
  const inputs: (Tensor | null)[] = [randomTensor(c.x, seed), randomTensor(c.w, seed + 1, -0.5, 0.5)];
  if (c.bias) inputs.push(randomTensor([c.w[0]], seed + 2));
  return {
    opType: 'Conv', opset: c.opset ?? 11, inputs, attributes: c.attributes,
    constantInputs: c.dynamicWeights ? [] : [1, 2], ...(epilogue ? { epilogue } : {}), ...(device ? { device } : {}),
  };
}

/**
 * Both sides accumulate K = C/group · kernel-volume products in f32, in different orders. Each rounding is
 * at most 2^-24 of a partial sum whose size stays within a few times the largest output, so the outputs
 * may differ by up to about K · 2^-22 · max(1, |y|max).
 */
function tolerance(c: ConvCase, expected: Tensor): number {
  const k = c.w.slice(1).reduce((a, b) => a * b, 1) + (c.bias ? 1 : 0);
  let peak = 1;
  for (const v of expected.data) peak = Math.max(peak, Math.abs(v));
  return k * 2 ** -22 * peak;
}

t.test('Conv matches onnxruntime', async (t) => {
  let seed = 100;
  for (const c of cases) {
    seed += 10;
    const single = makeCase(c, seed);
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, ['float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape`);
    t.ok(diff.maxAbs <= tolerance(c, expected), `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)} within ${tolerance(c, expected).toExponential(2)}`);
  }
});

t.test('Conv matches onnxruntime with GPU tilings and without subgroups', async (t) => {
  // the tiling for discrete GPUs, and the CPU tiling when the adapter lacks the subgroups feature
  const variants = [
    { name: 'gpu', device: { isCpu: false, features: new Set<string>() } },
    { name: 'cpu without subgroups', device: { isCpu: true, features: new Set<string>() } },
  ];
  const picked = cases.filter((c) => /partial channel|GEMV path: batch|depthwise 5x5 s1|grouped|dilation/.test(c.name));
  let seed = 2000;
  for (const variant of variants) {
    for (const c of picked) {
      seed += 10;
      const single = makeCase(c, seed, undefined, variant.device);
      const [gpu] = await runSingleOpOnGpu(single);
      const [expected] = await runSingleOpOnOrt(single, ['float32']);
      const diff = compareTensors(gpu, expected);
      t.ok(diff.mismatch === undefined && diff.maxAbs <= tolerance(c, expected), `${variant.name}, ${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
    }
  }
});

const hardSwishChain: Epilogue = {
  steps: [
    { opType: 'Add', args: [{ input: 0 }, { literal: 3 }], attributes: {}, dtype: 'float32' },
    { opType: 'Clip', args: [{ step: 0 }], attributes: { min: 0, max: 6 }, dtype: 'float32' },
    { opType: 'Mul', args: [{ input: 0 }, { step: 1 }], attributes: {}, dtype: 'float32' },
    { opType: 'Div', args: [{ step: 2 }, { literal: 6 }], attributes: {}, dtype: 'float32' },
  ],
  result: 3,
};
const epilogues: { name: string; epilogue: Epilogue; apply: (v: number) => number }[] = [
  { name: 'Relu', epilogue: { steps: [{ opType: 'Relu', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 0 }, apply: (v) => Math.max(v, 0) },
  { name: 'Clip(0,6)', epilogue: { steps: [{ opType: 'Clip', args: [{ input: 0 }], attributes: { min: 0, max: 6 }, dtype: 'float32' }], result: 0 }, apply: (v) => Math.min(Math.max(v, 0), 6) },
  { name: 'HardSigmoid(0.2,0.5)', epilogue: { steps: [{ opType: 'HardSigmoid', args: [{ input: 0 }], attributes: { alpha: 0.2, beta: 0.5 }, dtype: 'float32' }], result: 0 }, apply: (v) => Math.min(Math.max(0.2 * v + 0.5, 0), 1) },
  { name: 'HardSwish', epilogue: { steps: [{ opType: 'HardSwish', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 0 }, apply: (v) => v * Math.min(Math.max(v / 6 + 0.5, 0), 1) },
  { name: 'x*clip(x+3,0,6)/6 chain', epilogue: hardSwishChain, apply: (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6 },
];

t.test('Conv applies fused epilogues on every path', async (t) => {
  // every activation on the direct path; the chain (the most complex program) on the other paths. Each
  // pair compiles a new kernel on lavapipe (seconds with a cold shader cache), hence not the full product.
  const direct: ConvCase = { name: 'direct', x: [1, 4, 6, 6], w: [8, 4, 3, 3], bias: true, attributes: { pads: [1, 1, 1, 1] } };
  const chain = epilogues[epilogues.length - 1];
  const runs: { path: ConvCase; e: typeof epilogues[number] }[] = [
    ...epilogues.map((e) => ({ path: direct, e })),
    ...[
      { name: 'gemv', x: [1, 16, 1, 1], w: [12, 16, 1, 1], bias: true },
      { name: 'pointwise', x: [1, 8, 4, 4], w: [12, 8, 1, 1], bias: true },
      { name: 'depthwise', x: [1, 8, 6, 6], w: [8, 1, 3, 3], bias: true, attributes: { group: 8, pads: [1, 1, 1, 1] } },
    ].map((path) => ({ path, e: chain })),
  ];
  let seed = 900;
  for (const { path, e } of runs) {
    seed += 5;
    // inputs scaled ×4 so activations see values beyond their clamps
    const single = makeCase(path, seed, e.epilogue);
    single.inputs[0] = randomTensor(path.x, seed, -4, 4);
    const [gpu] = await runSingleOpOnGpu(single);
    const plain = { ...single };
    delete plain.epilogue;
    const [conv] = await runSingleOpOnOrt(plain, ['float32']);
    const expected: Tensor = { ...conv, data: Float32Array.from(conv.data, e.apply) };
    const diff = compareTensors(gpu, expected);
    const bound = tolerance(path, conv) * 4;
    t.ok(diff.maxAbs <= bound, `${path.name} + ${e.name}: max |diff| ${diff.maxAbs.toExponential(2)} within ${bound.toExponential(2)}`);
  }
});

t.test('Conv infer rejects bad inputs with coded errors', async (t) => {
  const op = findOp('', 'Conv')!;
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'channel mismatch', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 4, 5, 5], 1), randomTensor([2, 3, 3, 3], 2)] } },
    { name: 'rank mismatch', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3], 2)] } },
    { name: 'group not dividing channels', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 6, 5, 5], 1), randomTensor([4, 2, 3, 3], 2)], attributes: { group: 3 } } },
    { name: 'bias length', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3, 3], 2), randomTensor([3], 3)] } },
    { name: 'kernel_shape disagreeing with W', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3, 3], 2)], attributes: { kernel_shape: [2, 2] } } },
    { name: 'kernel larger than padded input', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 2, 2], 1), randomTensor([2, 3, 3, 3], 2)] } },
    { name: 'strides of wrong length', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3, 3], 2)], attributes: { strides: [1] } } },
    { name: 'zero stride', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3, 3], 2)], attributes: { strides: [0, 1] } } },
    { name: 'unknown auto_pad', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Conv', inputs: [randomTensor([1, 3, 5, 5], 1), randomTensor([2, 3, 3, 3], 2)], attributes: { auto_pad: 'SAME' } } },
    { name: 'integer input', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Conv', inputs: [{ dtype: 'int32', dims: [1, 1, 3, 3], data: new Int32Array(9) }, { dtype: 'int32', dims: [1, 1, 1, 1], data: new Int32Array(1) }] } },
    { name: 'rank 6 input', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Conv', inputs: [randomTensor([1, 1, 2, 2, 2, 2], 1), randomTensor([1, 1, 1, 1, 1, 1], 2)] } },
  ];
  for (const b of bad) {
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('conv_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});

t.test('Conv specialisation keys follow the generated code', async (t) => {
  const a = await buildSingleOp(makeCase(cases[0], 1));
  const b = await buildSingleOp(makeCase(cases[0], 2));
  const c = await buildSingleOp(makeCase({ ...cases[0], x: [1, 16, 8, 12] }, 1));
  t.equal(a.programs[0].key, b.programs[0].key, 'same shapes, different weights: same key');
  t.equal(a.programs[0].code, b.programs[0].code, 'and the same code');
  t.not(a.programs[0].key, c.programs[0].key, 'a different spatial size changes the key');
  const withEpilogue = await buildSingleOp(makeCase(cases[0], 1, epilogues[0].epilogue));
  t.not(a.programs[0].key, withEpilogue.programs[0].key, 'an epilogue changes the key');
});

t.test('conv-family programs name their node in labels only: equal keys mean identical code', async (t) => {
  const { caps } = await testDevice();
  const scales = { dtype: 'float32' as const, dims: [4], data: Float32Array.from([1, 1, 2, 2]) };
  const samples: SingleOpCase[] = [
    makeCase(cases[0], 1),
    makeCase({ name: 'gemv', x: [1, 8, 1, 1], w: [4, 8, 1, 1] }, 1),
    makeCase({ name: 'direct', x: [1, 4, 6, 6], w: [8, 4, 3, 3], attributes: { pads: [1, 1, 1, 1] } }, 1),
    makeCase({ name: 'dynamic weights', x: [1, 4, 6, 6], w: [8, 4, 3, 3], dynamicWeights: true }, 1),
    { opType: 'ConvTranspose', inputs: [randomTensor([1, 4, 3, 4], 1), randomTensor([4, 2, 2, 2], 2)], constantInputs: [1], attributes: { strides: [2, 2] } },
    { opType: 'ConvTranspose', inputs: [randomTensor([1, 4, 3, 4], 1), randomTensor([4, 2, 3, 3], 2)], constantInputs: [1], attributes: { strides: [2, 2] } },
    { opType: 'MaxPool', inputs: [randomTensor([1, 2, 6, 6], 1)], attributes: { kernel_shape: [2, 2] } },
    { opType: 'GlobalAveragePool', inputs: [randomTensor([1, 2, 6, 6], 1)] },
    { opType: 'Resize', opset: 13, inputs: [randomTensor([1, 2, 3, 4], 1), null, scales], constantInputs: [2] },
    { opType: 'BatchNormalization', inputs: [randomTensor([1, 3, 2, 4], 1), ...[2, 3, 4, 5].map((s) => randomTensor([3], s, 0.5, 1))] },
  ];
  for (const sample of samples) {
    const op = findOp('', sample.opType)!;
    const build = (name: string) => {
      const ctx = opContextFor(sample);
      const node = { ...ctx.node, name };
      const inputs = { ...ctx, node };
      return op.build!({ ...inputs, outputs: op.infer(inputs), device: caps });
    };
    const a = build('first_node');
    const b = build('second_node');
    t.same(a.map((p) => p.key), b.map((p) => p.key), `${sample.opType}: same keys`);
    t.ok(a.every((p, i) => p.code === b[i].code && !p.code.includes('first_node')), `${sample.opType}: same code, no node name in it`);
    t.ok(a.every((p) => p.label.includes('first_node')), `${sample.opType}: labels name the node`);
  }
});

t.test('depthwise dispatch folds into y beyond 65535 workgroups', async (t) => {
  // build only (X's data is never read): running a 64x2048x2048 map is far too slow on lavapipe
  const map: Tensor = { dtype: 'float32', dims: [1, 64, 2048, 2048], data: new Float32Array(0) };
  const { programs } = await buildSingleOp({
    opType: 'Conv', opset: 11, inputs: [map, randomTensor([64, 1, 3, 3], 2)],
    constantInputs: [1], attributes: { group: 64, pads: [1, 1, 1, 1] },
  });
  const [x, y] = programs[0].workgroups;
  t.ok(x <= 65535 && y > 1, `workgroups ${programs[0].workgroups}`);
  t.ok(programs[0].code.includes('gid.y'), 'invocations are numbered across x and y');
});
