/**
 * The opset 21 upgrade keeps every output onnxruntime-node computes: operators whose inputs or meaning changed
 * are rewritten (and counted), the real PaddleOCR models and a transformer fixture come out the same, and
 * operators it cannot carry over are refused by name.
 */
import path from 'node:path';
import fs from 'node:fs/promises';
import t, { type Test } from 'tap';
import { constantsToInitializers, decodeModelProto, encodeModelProto, opsetVersion } from '../../daemon/compress/model-proto.ts';
import { upgradeOpset } from '../../daemon/compress/opset-upgrade.ts';
import { OrtModel } from '../../daemon/compress/ort-runner.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { floatAttr, ModelBuilder } from '../helpers/onnx-builder.ts';
import { buildTransformerEncoder } from '../fixtures/transformer-models.ts';
import { randomTensorOf, randomValues } from './helpers/models.ts';

const assets = path.resolve(import.meta.dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets');

async function outputsOf(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await OrtModel.open(bytes, 'test');
  try {
    return await session.run(feeds);
  } finally {
    await session.close();
  }
}

function maxDifference(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  let max = 0;
  for (const [name, tensor] of Object.entries(a)) {
    const other = b[name]!;
    if (other.data.length !== tensor.data.length) return Infinity;
    for (let i = 0; i < tensor.data.length; i++) max = Math.max(max, Math.abs(tensor.data[i]! - other.data[i]!));
  }
  return max;
}

async function upgradeAndCompare(t: Test, bytes: Uint8Array, feeds: Record<string, Tensor>, tolerance = 0) {
  const model = decodeModelProto(bytes, 'test');
  constantsToInitializers(model.graph!);
  const result = upgradeOpset(model);
  t.equal(opsetVersion(model), 21);
  t.equal(Number(model.irVersion), 10);
  const upgraded = encodeModelProto(model);
  const difference = maxDifference(await outputsOf(bytes, feeds), await outputsOf(upgraded, feeds));
  t.ok(difference <= tolerance, `max |difference| ${difference} <= ${tolerance}`);
  return result;
}

t.test('opset 9 attributes become inputs (Clip, Slice, Squeeze, Unsqueeze, ReduceMean, Pad) with identical outputs', async (t) => {
  const bytes = new ModelBuilder({ opset: 9 })
    .input('x', 'float32', [2, 3, 4])
    .node('Clip', ['x'], ['c'], { min: floatAttr(-0.5), max: 0.75 })
    .node('Slice', ['c'], ['s'], { starts: [0, 1], ends: [2, 3], axes: [0, 2] })
    .node('Unsqueeze', ['s'], ['u'], { axes: [0] })
    .node('ReduceMean', ['u'], ['r'], { axes: [3], keepdims: 1 })
    .node('Squeeze', ['r'], ['q'], { axes: [0, 3] })
    .node('Pad', ['q'], ['y'], { pads: [0, 1, 0, 1], value: 0.25 })
    .output('y', 'float32', null)
    .toBytes();
  const result = await upgradeAndCompare(t, bytes, { x: randomTensorOf([2, 3, 4], 1) });
  t.same(result.rewritten, { Clip: 1, Slice: 1, Unsqueeze: 1, ReduceMean: 1, Squeeze: 1, Pad: 1 });
});

t.test('old-style Softmax over a non-last axis is rebuilt exactly; Split and Dropout carry over', async (t) => {
  const bytes = new ModelBuilder({ opset: 11 })
    .input('x', 'float32', [2, 3, 4])
    .node('Softmax', ['x'], ['s'], { axis: 1 })
    .node('LogSoftmax', ['x'], ['l'], { axis: 2 })
    .node('Split', ['s'], ['a', 'b'], { axis: 2, split: [1, 3] })
    .node('Split', ['l'], ['c', 'd'], { axis: 2 })
    .node('Dropout', ['d'], ['e'], { ratio: 0.5 })
    .output('a', 'float32', null).output('b', 'float32', null).output('c', 'float32', null).output('e', 'float32', null)
    .toBytes();
  const result = await upgradeAndCompare(t, bytes, { x: randomTensorOf([2, 3, 4], 2, 3) }, 1e-6);
  t.same(result.rewritten, { Softmax: 1, LogSoftmax: 1, Split: 2, Dropout: 1 }, 'LogSoftmax over axis 2 is rebuilt too while the rank is unknown');
  const withRanks = upgradeOpset(decodeModelProto(bytes, 'x'), { ranks: new Map([['x', 3]]) });
  t.same(withRanks.rewritten, { Softmax: 1, Split: 2, Dropout: 1 }, 'knowing the rank, LogSoftmax over the last axis stays one node');
});

t.test('Upsample (opset 9) becomes Resize with the same nearest-neighbour output', async (t) => {
  const bytes = new ModelBuilder({ opset: 9 })
    .input('x', 'float32', [1, 2, 3, 3])
    .initializer('scales', 'float32', [4], [1, 1, 2, 2])
    .node('Upsample', ['x', 'scales'], ['y'], { mode: 'nearest' })
    .output('y', 'float32', null)
    .toBytes();
  await upgradeAndCompare(t, bytes, { x: randomTensorOf([1, 2, 3, 3], 3) });
});

t.test('operators it cannot carry over are refused by node name', async (t) => {
  const scatter = new ModelBuilder({ opset: 9 }).input('x', 'float32', [4])
    .node('Shrink', ['x'], ['s'], {}, { name: 'fine' })
    .node('Scatter', ['s', 'x', 'x'], ['y'], {}, { name: 'old_scatter' }).output('y', 'float32', null).toBytes();
  await expectEdgerunError(t, () => upgradeOpset(decodeModelProto(scatter, 'x')), 'EDGERUN_ERR_COMPRESS', /node 'old_scatter' \(Scatter\) is not an operator the compressor knows how to carry from opset 9 to 21/);
  const groupNorm = new ModelBuilder({ opset: 18 }).input('x', 'float32', [1, 4, 2])
    .initializer('s', 'float32', [2], [1, 1]).initializer('b', 'float32', [2], [0, 0])
    .node('GroupNormalization', ['x', 's', 'b'], ['y'], { num_groups: 2 }, { name: 'gn' }).output('y', 'float32', null).toBytes();
  await expectEdgerunError(t, () => upgradeOpset(decodeModelProto(groupNorm, 'x')), 'EDGERUN_ERR_COMPRESS', /'gn' \(GroupNormalization\) changed meaning at opset 21/);
});

t.test('a transformer encoder at opset 11 upgrades with identical outputs', async (t) => {
  const fixture = buildTransformerEncoder({ opset: 11, layers: 1 });
  await upgradeAndCompare(t, fixture.bytes, fixture.sampleInputs(), 1e-5);
});

for (const [file, dims, tolerance] of [
  ['ch_PP-OCRv4_rec_infer.onnx', [1, 3, 48, 160], 1e-5],
  ['ch_PP-OCRv4_det_infer.onnx', [1, 3, 64, 64], 1e-5],
  ['ch_ppocr_mobile_v2.0_cls_infer.onnx', [1, 3, 48, 192], 1e-6],
] as const) {
  t.test(`${file} (opset ${file.includes('det') ? 11 : 9}) upgrades to opset 21 with the same outputs`, async (t) => {
    const bytes = new Uint8Array(await fs.readFile(path.join(assets, file)));
    const x = randomTensorOf([...dims], 7, 1);
    await upgradeAndCompare(t, bytes, { x }, tolerance);
  });
}

t.test('Constant nodes become initializers of the same name', async (t) => {
  const bytes = new ModelBuilder({ opset: 13 }).input('x', 'float32', [2])
    .constant('w', 'float32', [2], randomValues(2, 1)).node('Mul', ['x', 'w'], ['y']).output('y', 'float32', null).toBytes();
  const model = decodeModelProto(bytes, 'x');
  t.equal(constantsToInitializers(model.graph!), 1);
  t.same(model.graph!.initializer!.map((i) => i.name), ['w']);
  t.same(model.graph!.node!.map((n) => n.opType), ['Mul']);
});
