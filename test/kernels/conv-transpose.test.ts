import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Epilogue } from '../../daemon/kernels/types.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { buildSingleOp, compareTensors, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, type AttrInput, type SingleOpCase } from '../helpers/kernel-harness.ts';

interface TransposeCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  attributes?: Record<string, AttrInput>;
  opset?: number;
  dynamicWeights?: boolean;
}

const cases: TransposeCase[] = [
  { name: 'det upsampler 2x2 stride 2 (24->24)', x: [1, 24, 5, 6], w: [24, 24, 2, 2], attributes: { strides: [2, 2], kernel_shape: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 } },
  { name: 'det head 2x2 stride 2 (24->1)', x: [1, 24, 4, 4], w: [24, 1, 2, 2], attributes: { strides: [2, 2] } },
  { name: 'kernel = stride blocks, partial row tile (2x2 s2, width 10)', x: [1, 4, 3, 10], w: [4, 5, 2, 2], bias: true, attributes: { strides: [2, 2] } },
  { name: 'kernel = stride blocks, 3x3 s3 grouped', x: [1, 4, 3, 4], w: [4, 3, 3, 3], bias: true, attributes: { strides: [3, 3], group: 2 } },
  { name: 'kernel = stride blocks, 1D 4 s4', x: [2, 3, 5], w: [3, 2, 4], attributes: { strides: [4] } },
  { name: 'kernel = stride but padded (phase path)', x: [1, 3, 4, 4], w: [3, 2, 2, 2], attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: '3x3 stride 1 pads 1 with bias', x: [1, 5, 6, 7], w: [5, 4, 3, 3], bias: true, attributes: { pads: [1, 1, 1, 1] } },
  { name: '3x3 stride 2 pads 1 output_padding 1', x: [1, 4, 5, 5], w: [4, 6, 3, 3], bias: true, attributes: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] } },
  { name: '4x4 stride 2 pads 1 (classic upsampler)', x: [2, 3, 4, 5], w: [3, 5, 4, 4], bias: true, attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'stride 3 larger than kernel 2 (bias-only phases)', x: [1, 3, 4, 4], w: [3, 2, 2, 2], bias: true, attributes: { strides: [3, 3] } },
  { name: 'grouped (group 2)', x: [1, 4, 5, 5], w: [4, 3, 3, 3], bias: true, attributes: { group: 2, strides: [2, 2] } },
  { name: 'depthwise (group = channels)', x: [1, 6, 5, 5], w: [6, 1, 3, 3], attributes: { group: 6, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'dilation 2', x: [1, 3, 5, 5], w: [3, 4, 3, 3], attributes: { dilations: [2, 2], strides: [2, 2] } },
  { name: 'asymmetric strides [2,1] and pads', x: [1, 3, 5, 6], w: [3, 4, 3, 2], attributes: { strides: [2, 1], pads: [1, 0, 0, 1] } },
  { name: 'output_shape (odd total padding)', x: [1, 3, 4, 4], w: [3, 2, 3, 3], attributes: { strides: [2, 2], output_shape: [8, 8] } },
  { name: 'output_shape with N and C', x: [1, 3, 4, 4], w: [3, 2, 3, 3], attributes: { strides: [2, 2], output_shape: [1, 2, 9, 8] } },
  { name: 'auto_pad SAME_UPPER (odd total padding)', x: [1, 3, 4, 5], w: [3, 2, 3, 3], attributes: { strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'auto_pad SAME_LOWER (odd total padding)', x: [1, 3, 4, 5], w: [3, 2, 3, 3], attributes: { strides: [2, 2], auto_pad: 'SAME_LOWER' } },
  { name: 'auto_pad SAME_UPPER (even total padding)', x: [1, 3, 4, 5], w: [3, 2, 4, 4], attributes: { strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'output_shape beyond the full extent (zero padding, like output_padding)', x: [1, 3, 4, 4], w: [3, 2, 3, 3], bias: true, attributes: { strides: [2, 2], output_shape: [10, 10] } },
  { name: 'auto_pad VALID', x: [1, 3, 4, 5], w: [3, 2, 3, 3], attributes: { strides: [2, 2], auto_pad: 'VALID' } },
  { name: '1D stride 2', x: [2, 4, 7], w: [4, 3, 3], bias: true, attributes: { strides: [2], pads: [1, 0] } },
  { name: '3D stride 2', x: [1, 2, 3, 3, 4], w: [2, 3, 2, 2, 2], bias: true, attributes: { strides: [2, 2, 2] } },
  { name: 'opset 1', x: [1, 3, 4, 4], w: [3, 2, 2, 2], attributes: { strides: [2, 2] }, opset: 1 },
  { name: 'non-constant W and B (GPU repack per phase)', x: [1, 4, 4, 4], w: [4, 3, 3, 3], bias: true, attributes: { strides: [2, 2] }, dynamicWeights: true },
];

function makeCase(c: TransposeCase, seed: number, epilogue?: Epilogue, device?: SingleOpCase['device']): SingleOpCase {
  const inputs: (Tensor | null)[] = [randomTensor(c.x, seed), randomTensor(c.w, seed + 1, -0.5, 0.5)];
  if (c.bias) inputs.push(randomTensor([c.w[1] * Number(c.attributes?.group ?? 1)], seed + 2));
  return { opType: 'ConvTranspose', opset: c.opset ?? 11, inputs, attributes: c.attributes, constantInputs: c.dynamicWeights ? [] : [1, 2], ...(epilogue ? { epilogue } : {}), ...(device ? { device } : {}) };
}

/**
 * An output sums at most K = (C/group) · kernel-volume products (fewer with strides) in f32 on both sides,
 * in different orders: |diff| ≤ K · 2^-22 · max(1, |y|max), as for Conv.
 */
function tolerance(c: TransposeCase, expected: Tensor): number {
  const k = (c.w[0] / Number(c.attributes?.group ?? 1)) * c.w.slice(2).reduce((a, b) => a * b, 1) + 1;
  let peak = 1;
  for (const v of expected.data) peak = Math.max(peak, Math.abs(v));
  return k * 2 ** -22 * peak;
}

t.test('ConvTranspose matches onnxruntime', async (t) => {
  let seed = 300;
  for (const c of cases) {
    seed += 10;
    const single = makeCase(c, seed);
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, ['float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape [${gpu.dims}]`);
    t.ok(diff.maxAbs <= tolerance(c, expected), `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
  }
});

t.test('ConvTranspose matches onnxruntime with the GPU tiling', async (t) => {
  const device = { isCpu: false, features: new Set<string>() };
  let seed = 1300;
  for (const c of cases.filter((x) => /det upsampler|4x4 stride 2|depthwise|blocks, 3x3/.test(x.name))) {
    seed += 10;
    const single = makeCase(c, seed, undefined, device);
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, ['float32']);
    const diff = compareTensors(gpu, expected);
    t.ok(diff.mismatch === undefined && diff.maxAbs <= tolerance(c, expected), `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
  }
});

t.test('ConvTranspose picks the block kernel exactly when kernel = stride without padding', async (t) => {
  const blocks = await buildSingleOp(makeCase(cases[0], 1));
  t.equal(blocks.programs.length, 1, 'one program for the det upsampler');
  t.ok(blocks.programs[0].key.startsWith('convT-block'), 'and it is the block kernel');
  const padded = await buildSingleOp(makeCase(cases.find((c) => c.name.includes('but padded'))!, 1));
  t.equal(padded.programs.length, 4, 'a padded 2x2 s2 runs one program per stride phase');
});

t.test('ConvTranspose applies a fused epilogue', async (t) => {
  const c = cases[0];
  const relu: Epilogue = { steps: [{ opType: 'Relu', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 0 };
  const single = makeCase({ ...c, bias: true }, 77, relu);
  const [gpu] = await runSingleOpOnGpu(single);
  const plain = { ...single };
  delete plain.epilogue;
  const [raw] = await runSingleOpOnOrt(plain, ['float32']);
  const expected = { ...raw, data: Float32Array.from(raw.data, (v) => Math.max(v, 0)) };
  const diff = compareTensors(gpu, expected);
  t.ok(diff.maxAbs <= tolerance(c, raw), `max |diff| ${diff.maxAbs.toExponential(2)}`);
  t.ok(gpu.data.every((v) => v >= 0), 'no negative outputs after Relu');
});

t.test('ConvTranspose infer rejects bad inputs with coded errors', async (t) => {
  const op = findOp('', 'ConvTranspose')!;
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'W input channels differ from X', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 4, 3, 3], 1), randomTensor([3, 2, 2, 2], 2)] } },
    { name: 'rank mismatch', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 3, 3, 3], 1), randomTensor([3, 2, 2], 2)] } },
    { name: 'bias length', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 3, 3, 3], 1), randomTensor([3, 2, 2, 2], 2), randomTensor([3], 3)] } },
    { name: 'output_shape of wrong length', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 3, 3, 3], 1), randomTensor([3, 2, 2, 2], 2)], attributes: { output_shape: [6] } } },
    { name: 'pads swallowing the output', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 3, 1, 1], 1), randomTensor([3, 2, 1, 1], 2)], attributes: { pads: [1, 1, 1, 1] } } },
    { name: 'group not dividing channels', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'ConvTranspose', inputs: [randomTensor([1, 3, 3, 3], 1), randomTensor([3, 2, 2, 2], 2)], attributes: { group: 2 } } },
  ];
  for (const b of bad) {
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('convtranspose_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});
