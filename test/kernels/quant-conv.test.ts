/**
 * edgerun.QConv kernels through the kernel harness on the real adapter, against onnxruntime running Conv on
 * the weights dequantized exactly as DequantizeLinear does; plus what the GPU holds, coded errors and keys.
 * End-to-end models (the fuse-dequant pass making the QConvs): quant-conv-models.test.ts.
 */
import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Epilogue } from '../../daemon/kernels/types.ts';
import {
  buildSingleOp, compareTensors, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, seededRandom, type AttrInput, type SingleOpCase,
} from '../helpers/kernel-harness.ts';

type WeightDType = 'int8' | 'uint8' | 'int4' | 'uint4';

interface QCase {
  name: string;
  x: number[];
  w: number[];
  dtype: WeightDType;
  /** Scale granularity: one value, one per output channel, or blocks of this many input channels. */
  scales: 'tensor' | 'channel' | number;
  zeroPoint?: boolean;
  bias?: boolean;
  attributes?: Record<string, AttrInput>;
}

const RANGE: Record<WeightDType, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int4: [-8, 7], uint4: [0, 15] };

// Small shapes (lavapipe compiles each kernel in seconds) covering every path: the pointwise GEMM (vec4 and
// scalar pixels, partial channel tiles), the GEMV for maps of at most 4 pixels, the direct conv (k×k, strides, pads, dilations, groups, depthwise),
// every weight dtype, per-tensor / per-channel / block scales with and without zero points, one block and
// several blocks (with a partial last block).
const cases: QCase[] = [
  { name: 'pointwise int8 per-channel symmetric, bias', x: [1, 16, 8, 8], w: [24, 16, 1, 1], dtype: 'int8', scales: 'channel', bias: true },
  { name: 'pointwise uint8 per-channel asymmetric, partial tile, odd pixels', x: [1, 6, 5, 7], w: [18, 6, 1, 1], dtype: 'uint8', scales: 'channel', zeroPoint: true },
  { name: 'pointwise int4 blocks of 32 (two blocks), bias', x: [1, 64, 4, 8], w: [16, 64, 1, 1], dtype: 'int4', scales: 32, bias: true },
  { name: 'pointwise uint4 blocks of 32 with zero points, partial last block', x: [1, 40, 3, 4], w: [12, 40, 1, 1], dtype: 'uint4', scales: 32, zeroPoint: true },
  { name: 'GEMV int8 per-tensor on a 1x1 map', x: [1, 24, 1, 1], w: [20, 24, 1, 1], dtype: 'int8', scales: 'tensor', bias: true },
  { name: 'GEMV uint4 blocks of 32 with zero points, partial block, padded rows, batch 2 on 2x1 maps', x: [2, 44, 2, 1], w: [9, 44, 1, 1], dtype: 'uint4', scales: 32, zeroPoint: true, bias: true },
  { name: 'GEMV uint8 per-channel asymmetric, 1D with 3 pixels, channels not a multiple of 4', x: [1, 10, 3], w: [7, 10, 1], dtype: 'uint8', scales: 'channel', zeroPoint: true },
  { name: 'pointwise path on a 1x1 map when blocks are not whole words (int4 blocks of 4)', x: [1, 12, 1, 1], w: [5, 12, 1, 1], dtype: 'int4', scales: 4, zeroPoint: true },
  { name: '3x3 p1 int8 per-channel asymmetric, bias', x: [1, 8, 6, 6], w: [12, 8, 3, 3], dtype: 'int8', scales: 'channel', zeroPoint: true, bias: true, attributes: { pads: [1, 1, 1, 1] } },
  { name: '3x3 s2 p1 int4 one block of 32', x: [1, 32, 9, 9], w: [8, 32, 3, 3], dtype: 'int4', scales: 32, attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: '3x3 uint4 blocks of 16 with zero points (three blocks)', x: [1, 48, 5, 5], w: [6, 48, 3, 3], dtype: 'uint4', scales: 16, zeroPoint: true, bias: true },
  { name: 'depthwise 3x3 s1 p1 int8 per-channel', x: [1, 16, 9, 11], w: [16, 1, 3, 3], dtype: 'int8', scales: 'channel', bias: true, attributes: { group: 16, pads: [1, 1, 1, 1] } },
  { name: 'depthwise 3x3 s2 p1 int4 blocks (one per tap)', x: [1, 8, 10, 10], w: [8, 1, 3, 3], dtype: 'int4', scales: 32, bias: true, attributes: { group: 8, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'grouped 3x3 uint8 per-tensor with zero point, batch 2', x: [2, 8, 6, 6], w: [12, 4, 3, 3], dtype: 'uint8', scales: 'tensor', zeroPoint: true, attributes: { group: 2, pads: [1, 0, 1, 0] } },
  { name: 'dilation 2, asymmetric pads, int8 per-channel', x: [1, 5, 10, 9], w: [7, 5, 3, 3], dtype: 'int8', scales: 'channel', attributes: { dilations: [2, 2], pads: [2, 1, 0, 2] } },
  { name: 'SAME_UPPER stride 2 (odd total pad) uint8 per-channel with zero points', x: [1, 4, 8, 8], w: [5, 4, 3, 3], dtype: 'uint8', scales: 'channel', zeroPoint: true, attributes: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { name: '1D k3 s2 p1 int4 blocks of 16 with zero points', x: [1, 24, 17], w: [6, 24, 3], dtype: 'int4', scales: 16, zeroPoint: true, bias: true, attributes: { strides: [2], pads: [1, 1] } },
  { name: '1x1 stride 2 (direct path) uint4 per-channel with zero points', x: [1, 8, 9, 9], w: [12, 8, 1, 1], dtype: 'uint4', scales: 'channel', zeroPoint: true, bias: true, attributes: { strides: [2, 2] } },
];

function intValues(dtype: WeightDType, count: number, seed: number): Int32Array {
  const [lo, hi] = RANGE[dtype];
  const random = seededRandom(seed);
  return Int32Array.from({ length: count }, () => lo + Math.floor(random() * (hi - lo + 1)));
}

function scaleDims(c: QCase): number[] {
  if (c.scales === 'tensor') return [];
  if (c.scales === 'channel') return [c.w[0]];
  return [c.w[0], Math.ceil(c.w[1] / c.scales), ...c.w.slice(2)];
}

interface Built {
  quantized: SingleOpCase;
  /** The same conv with W dequantized on the host exactly as DequantizeLinear does: f32((q − z) · s). */
  reference: SingleOpCase;
}

function makeCase(c: QCase, seed: number, epilogue?: Epilogue, device?: SingleOpCase['device']): Built {
  const count = c.w.reduce((a, b) => a * b, 1);
  const q = intValues(c.dtype, count, seed);
  const sDims = scaleDims(c);
  const sCount = sDims.reduce((a, b) => a * b, 1);
  const random = seededRandom(seed + 1);
  // scales around 1/range so that dequantized weights stay within about ±1
  const span = RANGE[c.dtype][1] - RANGE[c.dtype][0];
  const scale = Float32Array.from({ length: sCount }, () => (0.5 + random()) / span);
  const zp = c.zeroPoint ? intValues(c.dtype, sCount, seed + 2) : null;
  const kernelVolume = c.w.slice(2).reduce((a, b) => a * b, 1);
  const dequantized = new Float32Array(count);
  for (let index = 0; index < count; index++) {
    const m = Math.floor(index / (c.w[1] * kernelVolume));
    const ci = Math.floor(index / kernelVolume) % c.w[1];
    const tap = index % kernelVolume;
    const s = typeof c.scales === 'number'
      ? (m * Math.ceil(c.w[1] / c.scales) + Math.floor(ci / c.scales)) * kernelVolume + tap
      : c.scales === 'channel' ? m : 0;
    dequantized[index] = Math.fround((q[index] - (zp ? zp[s] : 0)) * scale[s]);
  }
  const x = randomTensor(c.x, seed + 3);
  const bias = c.bias ? randomTensor([c.w[0]], seed + 4) : null;
  const attributes = { ...c.attributes };
  const quantAttributes = { ...attributes, axis: typeof c.scales === 'number' ? 1 : 0, block_size: typeof c.scales === 'number' ? c.scales : 0 };
  const quantized: SingleOpCase = {
    opType: 'QConv', domain: 'edgerun',
    inputs: [
      x,
      { dtype: c.dtype as DType, dims: c.w, data: q },
      { dtype: 'float32', dims: sDims, data: scale },
      zp ? { dtype: c.dtype as DType, dims: sDims, data: zp } : null,
      bias,
    ],
    constantInputs: [1, 2, 3, 4],
    attributes: quantAttributes,
    ...(epilogue ? { epilogue } : {}),
    ...(device ? { device } : {}),
  };
  const reference: SingleOpCase = {
    opType: 'Conv', opset: 11,
    inputs: [x, { dtype: 'float32', dims: c.w, data: dequantized }, ...(bias ? [bias] : [])],
    constantInputs: [1, 2], attributes,
  };
  return { quantized, reference };
}

/**
 * The GPU multiplies the same f32 weights as onnxruntime (block scales), or sums (q − z)·x and scales the
 * sum once (per-channel scales): either way only the f32 rounding of K = C/group · kernel-volume products,
 * summed in another order, differs, about K · 2^-22 · max(1, |y|max) as for the FP32 Conv.
 */
function tolerance(c: QCase, expected: Tensor): number {
  const k = c.w.slice(1).reduce((a, b) => a * b, 1) + (c.bias ? 1 : 0);
  let peak = 1;
  for (const v of expected.data) peak = Math.max(peak, Math.abs(v));
  return k * 2 ** -22 * peak;
}

t.test('QConv matches onnxruntime running Conv on the dequantized weights', async (t) => {
  let seed = 300;
  for (const c of cases) {
    seed += 10;
    const { quantized, reference } = makeCase(c, seed);
    const [gpu] = await runSingleOpOnGpu(quantized);
    const [expected] = await runSingleOpOnOrt(reference, ['float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape`);
    t.ok(diff.maxAbs <= tolerance(c, expected), `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)} within ${tolerance(c, expected).toExponential(2)}`);
  }
});

t.test('QConv matches onnxruntime with GPU tilings and without subgroups', async (t) => {
  const variants = [
    { name: 'gpu', device: { isCpu: false, features: new Set<string>() } },
    { name: 'cpu without subgroups', device: { isCpu: true, features: new Set<string>() } },
  ];
  const picked = cases.filter((c) => /partial last block|three blocks|depthwise 3x3 s2|GEMV uint4/.test(c.name));
  let seed = 1300;
  for (const variant of variants) {
    for (const c of picked) {
      seed += 10;
      const { quantized, reference } = makeCase(c, seed, undefined, variant.device);
      const [gpu] = await runSingleOpOnGpu(quantized);
      const [expected] = await runSingleOpOnOrt(reference, ['float32']);
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
const relu: Epilogue = { steps: [{ opType: 'Relu', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 0 };

t.test('QConv applies a fused epilogue after dequantization, scale and bias', async (t) => {
  const runs = [
    { c: cases.find((c) => /pointwise int8 per-channel/.test(c.name))!, name: 'HardSwish chain', epilogue: hardSwishChain, apply: (v: number) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6 },
    { c: cases.find((c) => /three blocks/.test(c.name))!, name: 'Relu', epilogue: relu, apply: (v: number) => Math.max(v, 0) },
    { c: cases.find((c) => /GEMV uint4/.test(c.name))!, name: 'HardSwish chain', epilogue: hardSwishChain, apply: (v: number) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6 },
  ];
  let seed = 1700;
  for (const run of runs) {
    seed += 10;
    const { quantized, reference } = makeCase(run.c, seed, run.epilogue);
    // inputs ×4 so that the activations see values beyond their clamps
    quantized.inputs[0] = randomTensor(run.c.x, seed, -4, 4);
    reference.inputs[0] = quantized.inputs[0];
    const [gpu] = await runSingleOpOnGpu(quantized);
    const [conv] = await runSingleOpOnOrt(reference, ['float32']);
    const expected: Tensor = { ...conv, data: Float32Array.from(conv.data, run.apply) };
    const bound = tolerance(run.c, conv) * 4;
    const diff = compareTensors(gpu, expected);
    t.ok(diff.maxAbs <= bound, `${run.c.name} + ${run.name}: max |diff| ${diff.maxAbs.toExponential(2)} within ${bound.toExponential(2)}`);
  }
});

t.test('QConv keeps W packed: one constant of packed words and scales, no binding of the integer tensor', async (t) => {
  for (const c of cases.filter((c) => /pointwise int8 per-channel|pointwise int4 blocks|three blocks|depthwise 3x3 s1|GEMV uint4/.test(c.name))) {
    const { quantized } = makeCase(c, 5);
    const { programs } = await buildSingleOp(quantized);
    t.equal(programs.length, 1, `${c.name}: one program`);
    t.equal(programs[0].key.startsWith('qconv-gemv:'), c.name.startsWith('GEMV'), `${c.name}: ${c.name.startsWith('GEMV') ? 'the GEMV kernel' : 'a tiled kernel'}`);
    const bindings = programs[0].bindings;
    t.ok(bindings.every((b) => b.kind !== 'input' || b.index === 0), `${c.name}: only X is bound from the node's inputs`);
    const constants = bindings.flatMap((b) => (b.kind === 'constant' ? [b.data] : []));
    t.equal(constants.length, 1, `${c.name}: one constant buffer`);
    t.ok(constants[0] instanceof Uint32Array, `${c.name}: the constant holds u32 words`);
    const bits = c.dtype.endsWith('4') ? 4 : 8;
    const weightBytes = (c.w.reduce((a, b) => a * b, 1) * bits) / 8;
    const scaleCount = quantized.inputs[2]!.data.length;
    // ONNX-side size: packed weights, f32 scales, zero points of the weight dtype, f32 bias
    const onnxBytes = weightBytes + scaleCount * 4 + (c.zeroPoint ? (scaleCount * bits) / 8 : 0) + (c.bias ? c.w[0] * 4 : 0);
    t.ok(constants[0].byteLength <= onnxBytes * 1.3, `${c.name}: ${constants[0].byteLength} bytes on the GPU for ${onnxBytes} in ONNX`);
  }
});

t.test('QConv infer rejects bad nodes with coded errors naming the node', async (t) => {
  const op = findOp('edgerun', 'QConv')!;
  const base = makeCase(cases.find((c) => /three blocks/.test(c.name))!, 1).quantized;
  const perChannel = makeCase(cases.find((c) => /3x3 p1 int8 per-channel/.test(c.name))!, 1).quantized;
  const edit = (c: SingleOpCase, change: (inputs: (Tensor | null)[]) => void, attributes?: Record<string, AttrInput>, constantInputs?: number[]): SingleOpCase => {
    const inputs = [...c.inputs];
    change(inputs);
    return { ...c, inputs, attributes: { ...c.attributes, ...attributes }, constantInputs: constantInputs ?? c.constantInputs };
  };
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'float weights', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(base, (i) => { i[1] = randomTensor(i[1]!.dims, 1); }) },
    { name: 'integer activations', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(base, (i) => { i[0] = { dtype: 'int32', dims: i[0]!.dims, data: new Int32Array(i[0]!.data.length) }; }) },
    { name: 'non-constant weights', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(base, () => {}, {}, [2, 3, 4]) },
    { name: 'non-constant scale', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(base, () => {}, {}, [1, 3, 4]) },
    { name: 'channel mismatch', code: 'EDGERUN_ERR_SHAPE', c: edit(base, (i) => { i[0] = randomTensor([1, 40, 5, 5], 1); }) },
    { name: 'block scale of the wrong shape', code: 'EDGERUN_ERR_SHAPE', c: edit(base, () => {}, { block_size: 32 }) },
    { name: 'blocks along the output channels', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(base, () => {}, { axis: 0 }) },
    { name: 'negative block_size', code: 'EDGERUN_ERR_ONNX_INVALID', c: edit(base, () => {}, { block_size: -1 }) },
    { name: 'axis out of range', code: 'EDGERUN_ERR_ONNX_INVALID', c: edit(base, () => {}, { axis: 4 }) },
    { name: 'zero point of another dtype', code: 'EDGERUN_ERR_SHAPE', c: edit(base, (i) => { i[3] = { ...i[3]!, dtype: 'int4' }; }) },
    { name: 'zero point of another shape', code: 'EDGERUN_ERR_SHAPE', c: edit(perChannel, (i) => { i[3] = { dtype: 'int8', dims: [6], data: new Int32Array(6) }; }) },
    { name: 'per-channel scale of the wrong length', code: 'EDGERUN_ERR_SHAPE', c: edit(perChannel, (i) => { i[2] = randomTensor([5], 1); i[3] = null; }) },
    { name: 'per-input-channel scales (axis 1, no blocks)', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: edit(perChannel, (i) => { i[2] = randomTensor([8], 1); i[3] = null; }, { axis: 1 }) },
    { name: 'bias length', code: 'EDGERUN_ERR_SHAPE', c: edit(base, (i) => { i[4] = randomTensor([5], 1); }) },
    { name: 'kernel larger than the input', code: 'EDGERUN_ERR_SHAPE', c: edit(base, (i) => { i[0] = randomTensor([1, 48, 2, 2], 1); }) },
    { name: 'zero stride', code: 'EDGERUN_ERR_ONNX_INVALID', c: edit(base, () => {}, { strides: [0, 1] }) },
  ];
  for (const b of bad) {
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('qconv_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});

t.test('QConv specialisation keys name the weight format and follow the generated code', async (t) => {
  const pointwise = cases[0];
  const a = await buildSingleOp(makeCase(pointwise, 1).quantized);
  const b = await buildSingleOp(makeCase(pointwise, 2).quantized);
  t.equal(a.programs[0].key, b.programs[0].key, 'other weights and scales: same key');
  t.equal(a.programs[0].code, b.programs[0].code, 'and the same code');
  const formats: Partial<QCase>[] = [{ dtype: 'uint8' }, { dtype: 'int4' }, { zeroPoint: true }, { scales: 'tensor' }, { scales: 16 }];
  const keys = new Set([a.programs[0].key]);
  for (const change of formats) {
    const { programs } = await buildSingleOp(makeCase({ ...pointwise, ...change }, 1).quantized);
    keys.add(programs[0].key);
  }
  t.equal(keys.size, formats.length + 1, 'each weight format has its own key');
  const withEpilogue = await buildSingleOp(makeCase(pointwise, 1, relu).quantized);
  t.not(withEpilogue.programs[0].key, a.programs[0].key, 'an epilogue changes the key');
  t.notOk(a.programs[0].code.includes('qconv_under_test'), 'the code does not name the node');
});
