import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { buildSingleOp, compareTensors, floatTensor, intTensor, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, type AttrInput, type SingleOpCase } from '../helpers/kernel-harness.ts';

interface ResizeCase {
  name: string;
  x: number[];
  opset: number;
  op?: 'Resize' | 'Upsample';
  scales?: number[];
  sizes?: number[];
  attributes?: Record<string, AttrInput>;
  dtype?: 'uint8' | 'int32';
  /** The kernel the case is meant to exercise. */
  kernel?: 'integer' | 'table';
}

const emptyRoi: Tensor = floatTensor([0], []);

const cases: ResizeCase[] = [
  { name: 'det neck: nearest asymmetric floor x2 (opset 11)', x: [1, 8, 5, 6], opset: 11, scales: [1, 1, 2, 2], attributes: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, kernel: 'integer' },
  { name: 'det neck: nearest asymmetric floor x4', x: [1, 4, 3, 5], opset: 11, scales: [1, 1, 4, 4], attributes: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, kernel: 'integer' },
  { name: 'det neck: nearest asymmetric floor x8', x: [1, 3, 2, 3], opset: 11, scales: [1, 1, 8, 8], attributes: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, kernel: 'integer' },
  { name: 'nearest half_pixel round_prefer_floor x2 (integer pattern)', x: [2, 3, 4, 4], opset: 13, scales: [1, 1, 2, 2], kernel: 'integer' },
  { name: 'nearest x3 (rows via division)', x: [1, 2, 3, 4], opset: 13, scales: [1, 1, 3, 4], attributes: { coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } },
  { name: 'nearest round_prefer_ceil x2.5', x: [1, 2, 4, 6], opset: 13, scales: [1, 1, 2.5, 2.5], attributes: { nearest_mode: 'round_prefer_ceil' }, kernel: 'table' },
  { name: 'nearest ceil, align_corners, sizes', x: [1, 2, 5, 7], opset: 13, sizes: [1, 2, 9, 12], attributes: { coordinate_transformation_mode: 'align_corners', nearest_mode: 'ceil' } },
  { name: 'nearest downsample half_pixel (ties) round_prefer_floor', x: [1, 2, 8, 8], opset: 13, scales: [1, 1, 0.5, 0.5] },
  { name: 'nearest downsample tf_half_pixel_for_nn', x: [1, 2, 9, 7], opset: 13, scales: [1, 1, 0.6, 0.45], attributes: { coordinate_transformation_mode: 'tf_half_pixel_for_nn' } },
  { name: 'nearest pytorch_half_pixel to size 1', x: [1, 2, 5, 6], opset: 13, sizes: [1, 2, 1, 9], attributes: { coordinate_transformation_mode: 'pytorch_half_pixel', nearest_mode: 'floor' } },
  { name: 'nearest uint8', x: [1, 2, 3, 3], opset: 13, scales: [1, 1, 2, 3], dtype: 'uint8' },
  { name: 'nearest int32 downsample', x: [1, 1, 6, 6], opset: 13, scales: [1, 1, 0.5, 0.75], dtype: 'int32' },
  { name: 'linear half_pixel x2', x: [1, 3, 4, 5], opset: 13, scales: [1, 1, 2, 2], attributes: { mode: 'linear' } },
  { name: 'linear align_corners sizes', x: [2, 2, 5, 4], opset: 11, sizes: [2, 2, 9, 7], attributes: { mode: 'linear', coordinate_transformation_mode: 'align_corners' } },
  { name: 'linear pytorch_half_pixel downsample', x: [1, 2, 9, 10], opset: 13, sizes: [1, 2, 4, 3], attributes: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' } },
  { name: 'linear asymmetric x1.5', x: [1, 2, 4, 6], opset: 13, scales: [1, 1, 1.5, 1.5], attributes: { mode: 'linear', coordinate_transformation_mode: 'asymmetric' } },
  { name: 'linear only along width', x: [1, 3, 4, 5], opset: 13, scales: [1, 1, 1, 3], attributes: { mode: 'linear' } },
  { name: 'linear on a 2D tensor', x: [5, 6], opset: 13, scales: [2, 0.5], attributes: { mode: 'linear' } },
  { name: 'linear half_pixel_symmetric (opset 19)', x: [1, 2, 5, 7], opset: 19, scales: [1, 1, 1.7, 0.6], attributes: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' } },
  { name: 'nearest half_pixel_symmetric (opset 19)', x: [1, 2, 5, 7], opset: 19, sizes: [1, 2, 8, 4], attributes: { coordinate_transformation_mode: 'half_pixel_symmetric' } },
  { name: 'opset 18 axes with scales', x: [1, 3, 4, 5], opset: 18, scales: [2, 3], attributes: { axes: [2, 3] }, kernel: 'table' },
  { name: 'opset 18 keep_aspect_ratio_policy not_larger', x: [1, 2, 4, 6], opset: 18, sizes: [9, 9], attributes: { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger', mode: 'linear' } },
  { name: 'opset 18 keep_aspect_ratio_policy not_smaller', x: [1, 2, 4, 6], opset: 18, sizes: [1, 2, 7, 7], attributes: { keep_aspect_ratio_policy: 'not_smaller' } },
  { name: 'opset 10 nearest (legacy rounding, downsample takes ceil)', x: [1, 2, 7, 7], opset: 10, scales: [1, 1, 0.5, 0.6] },
  { name: 'opset 10 nearest upsample', x: [1, 2, 3, 4], opset: 10, scales: [1, 1, 2, 2], kernel: 'integer' },
  { name: 'opset 10 linear', x: [1, 2, 3, 4], opset: 10, scales: [1, 1, 2, 1.5], attributes: { mode: 'linear' } },
  { name: 'Upsample opset 9 nearest (scales input)', x: [1, 2, 3, 4], opset: 9, op: 'Upsample', scales: [1, 1, 2, 2], kernel: 'integer' },
  { name: 'Upsample opset 9 linear', x: [1, 2, 3, 4], opset: 9, op: 'Upsample', scales: [1, 1, 2, 3], attributes: { mode: 'linear' } },
  { name: 'Upsample opset 7 (scales attribute)', x: [1, 2, 3, 4], opset: 7, op: 'Upsample', attributes: { scales: { floats: [1, 1, 2, 3] } } },
];

function makeCase(c: ResizeCase, seed: number): SingleOpCase {
  let x = randomTensor(c.x, seed, -2, 2);
  if (c.dtype) x = intTensor(c.dtype, c.x, Array.from(x.data, (v, i) => (c.dtype === 'uint8' ? (i * 29 + 7) & 255 : Math.round(v * 1000))));
  const op = c.op ?? 'Resize';
  const inputs: (Tensor | null)[] = [x];
  const scales = c.scales ? floatTensor([c.scales.length], c.scales) : null;
  const sizes = c.sizes ? intTensor('int64', [c.sizes.length], c.sizes) : null;
  if (op === 'Upsample' && c.opset >= 9) inputs.push(scales);
  else if (op === 'Resize' && c.opset === 10) inputs.push(scales);
  else if (op === 'Resize') {
    inputs.push(c.opset >= 13 ? null : emptyRoi, c.opset >= 13 ? scales : scales ?? floatTensor([0], []));
    if (sizes) inputs.push(sizes);
  }
  return { opType: op, opset: c.opset, inputs, attributes: c.attributes, constantInputs: [1, 2, 3] };
}

t.test('Resize and Upsample match onnxruntime', async (t) => {
  let seed = 700;
  for (const c of cases) {
    seed += 3;
    const single = makeCase(c, seed);
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, [c.dtype ?? 'float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape [${gpu.dims}]`);
    // nearest copies exactly; linear blends ≤ 2^rank values with weights ≤ 1: a few ulps of |x| ≤ 2
    const bound = (c.attributes?.mode ?? 'nearest') === 'nearest' ? 0 : 4e-6;
    t.ok(diff.maxAbs <= bound, `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
    if (c.kernel) {
      const { programs } = await buildSingleOp(single);
      t.equal(programs[0].key.startsWith(c.kernel === 'integer' ? 'resize-int' : 'resize-table'), true, `${c.name}: uses the ${c.kernel} kernel`);
    }
  }
});

t.test('Resize infer rejects unsupported and bad configurations', async (t) => {
  const x = randomTensor([1, 1, 4, 4], 1);
  const scales = floatTensor([4], [1, 1, 2, 2]);
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'non-constant scales', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 13, inputs: [x, null, scales] } },
    { name: 'non-constant sizes', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 13, inputs: [x, null, null, intTensor('int64', [4], [1, 1, 8, 8])] } },
    { name: 'cubic mode', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 13, inputs: [x, null, scales], constantInputs: [2], attributes: { mode: 'cubic' } } },
    { name: 'tf_crop_and_resize', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 13, inputs: [x, null, scales], constantInputs: [2], attributes: { coordinate_transformation_mode: 'tf_crop_and_resize' } } },
    { name: 'antialias', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 18, inputs: [x, null, scales], constantInputs: [2], attributes: { antialias: 1, mode: 'linear' } } },
    { name: 'scales of wrong length', code: 'EDGERUN_ERR_SHAPE', c: { opType: 'Resize', opset: 13, inputs: [x, null, floatTensor([2], [2, 2])], constantInputs: [2] } },
    { name: 'both scales and sizes', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Resize', opset: 13, inputs: [x, null, scales, intTensor('int64', [4], [1, 1, 8, 8])], constantInputs: [2, 3] } },
    { name: 'neither scales nor sizes', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Resize', opset: 13, inputs: [x, null] } },
    { name: 'unknown nearest_mode', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Resize', opset: 13, inputs: [x, null, scales], constantInputs: [2], attributes: { nearest_mode: 'nearest' } } },
    { name: 'linear on integers', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { opType: 'Resize', opset: 13, inputs: [intTensor('int32', [1, 1, 2, 2], [1, 2, 3, 4]), null, scales], constantInputs: [2], attributes: { mode: 'linear' } } },
    { name: 'negative scale', code: 'EDGERUN_ERR_ONNX_INVALID', c: { opType: 'Resize', opset: 13, inputs: [x, null, floatTensor([4], [1, 1, -2, 2])], constantInputs: [2] } },
  ];
  for (const b of bad) {
    const op = findOp('', b.c.opType)!;
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('resize_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});
