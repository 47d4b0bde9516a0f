/**
 * Compact storage of quantized models: float16 scales and biases behind Cast (scales rounded to float16 before
 * quantizing, float32 kept where float16 cannot hold a tensor), and the lossless graph compaction — checked on
 * the tensors written and against onnxruntime-node running the models.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { compactModel } from '../../daemon/compress/compact-graph.ts';
import { compressModel } from '../../daemon/compress/compress-model.ts';
import { decodeModelProto, encodeModelProto, initializerMap, readFloatTensor, type ModelProto } from '../../daemon/compress/model-proto.ts';
import { silentProgress } from '../../daemon/compress/progress.ts';
import { builtinRecipe } from '../../daemon/compress/recipes.ts';
import type { Sample } from '../../daemon/compress/sample-folder.ts';
import { biasHalfProblem, scaleHalfProblem } from '../../daemon/compress/storage.ts';
import { floatToHalfBits, halfBitsToFloat } from '../../daemon/onnx/half-float.ts';
import { OnnxDataType } from '../../daemon/onnx/proto-values.ts';
import { quantizeRtn } from '../../daemon/quant/rtn.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { convNetModel, randomTensorOf, randomValues } from './helpers/models.ts';

const toHalf = (v: number): number => halfBitsToFloat(floatToHalfBits(v));
const samples = (count: number, seed: number): Sample[] =>
  Array.from({ length: count }, (_, i) => ({ source: `s${i}`, feeds: { x: randomTensorOf([1, 8, 10, 10], seed + i) } }));

async function runOrt(bytes: Uint8Array, x: Sample['feeds']['x'], level: 'disabled' | 'all' = 'disabled'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, logSeverityLevel: 3 });
  const result = await session.run({ x: new ort.Tensor('float32', x!.data as Float32Array, x!.dims) });
  await session.release();
  return Object.values(result)[0]!.data as Float32Array;
}

t.test('quantizing with float16 scales: every scale is a float16 value rounded up, and scales float16 cannot hold closely stay float32', async (t) => {
  const dims = [6, 40];
  const weights = randomValues(240, 70, 0.3);
  for (let i = 0; i < 40; i++) weights[200 + i] = weights[200 + i]! * 1e-4; // channel 5: scale ≈ 2e-7 < 2⁻¹⁶
  const spec = { bits: 8 as const, scheme: 'symmetric' as const, granularity: { kind: 'channel' as const, axis: 0 }, scaleFormat: 'float16' as const };
  const q = quantizeRtn(weights, dims, spec);
  for (let c = 0; c < 5; c++) t.equal(toHalf(q.scale[c]!), q.scale[c], `channel ${c}: scale ${q.scale[c]} is a float16 value`);
  t.not(toHalf(q.scale[5]!), q.scale[5], 'the tiny channel keeps its float32 scale');
  const plain = quantizeRtn(weights, dims, { ...spec, scaleFormat: 'float32' });
  t.ok(Array.from(q.scale).some((s, i) => s !== plain.scale[i]), 'float32 scales are not float16-rounded');
  t.ok(Array.from(q.scale).every((s, i) => s >= plain.scale[i]!), 'rounded up: the extreme values still fit unclipped');
});

t.test('scales: a near-dead channel may round, a tensor of tiny scales may not; biases: out of range stays float32', async (t) => {
  t.equal(scaleHalfProblem(Float32Array.of(toHalf(0.01), toHalf(0.005), 2e-9), OnnxDataType.INT8), null, 'a 2e-9 channel next to 0.01 changes its weights by < 2⁻⁹·0.01');
  t.match(scaleHalfProblem(Float32Array.of(5e-7, 6e-7), OnnxDataType.INT8), /scale 4\.99\d*e-7 at 0 would change its weights/);
  t.match(scaleHalfProblem(Float32Array.of(toHalf(0.01), 0.0123), OnnxDataType.INT8), /scale 0\.01229\d* at 1/, 'a normal scale that is not a float16 value');
  t.equal(biasHalfProblem(Float32Array.of(-3.25, 1234.567, 1e-7)), null, 'in-range biases move by < 1e-3 relative or 1e-6');
  t.match(biasHalfProblem(Float32Array.of(1, 70000)), /bias 70000 at 1 is outside float16's range/);
});

t.test('int8 recipe: float16 scales and biases behind Cast, a bias out of float16 range kept float32, onnxruntime output as stored', async (t) => {
  const model = decodeModelProto(convNetModel(), 'convnet');
  const fcBias = model.graph!.initializer!.find((i) => i.name === 'fc.b')!;
  const values = readFloatTensor(fcBias);
  values[3] = 1e5;
  fcBias.rawData = new Uint8Array(values.buffer);
  delete (fcBias as { floatData?: number[] }).floatData;
  const result = await compressModel({
    modelBytes: encodeModelProto(model), source: 'convnet', recipe: builtinRecipe('int8'), calibration: samples(4, 1), evalSamples: samples(1, 60), progress: silentProgress,
  });
  t.equal(result.storage.halfScales, 5, 'all five layers store float16 scales');
  t.equal(result.storage.halfBiases, 4, 'conv1 (BN folded), depthwise and grouped (bias correction added theirs), head; fc keeps float32');
  t.match(result.storage.keptFloat32, [{ reason: /bias 100000.* outside float16's range/ }]);
  const written = decodeModelProto(result.modelBytes, 'compressed');
  const casts = written.graph!.node!.filter((n) => n.opType === 'Cast');
  t.equal(casts.length, result.storage.halfScales + result.storage.halfBiases, 'one Cast per float16 tensor');
  const initializers = initializerMap(written.graph!);
  for (const cast of casts) t.equal(initializers.get(cast.input![0]!)!.dataType, OnnxDataType.FLOAT16);
  const dequantized = written.graph!.node!.filter((n) => n.opType === 'DequantizeLinear');
  t.ok(dequantized.every((n) => casts.some((c) => c.output![0] === n.input![1])), 'every DequantizeLinear reads a Cast float16 scale');
  t.ok(result.outputError.relativeL2 < 0.012, `relative L2 vs FP32 ${result.outputError.relativeL2} < 0.012 (the float32-storage bound)`);
  const x = samples(1, 60)[0]!.feeds.x!;
  const ours = await runOrt(result.modelBytes, x, 'all');
  t.same(ours, result.evalCases[0]!.outputs.y!.data, 'onnxruntime runs the written model to its eval reference');
});

t.test('graph compaction is lossless: short names, same outputs, I/O and layer names kept, duplicates merged, Conv defaults dropped', async (t) => {
  const bytes = new ModelBuilder({ opset: 13 })
    .input('x', 'float32', [1, 8, 10, 10])
    .initializer('conv.weight.with.a.long.name', 'float32', [8, 8, 3, 3], randomValues(576, 80, 0.2))
    .initializer('first.copy', 'float32', [8, 1, 1], randomValues(8, 81, 0.5))
    .initializer('second.copy', 'float32', [8, 1, 1], randomValues(8, 81, 0.5))
    .initializer('unused', 'float32', [4], randomValues(4, 82))
    .node('Conv', ['x', 'conv.weight.with.a.long.name'], ['conv.output.with.a.long.name'],
      { pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1, kernel_shape: [3, 3] }, { name: 'the_layer' })
    .node('Add', ['conv.output.with.a.long.name', 'first.copy'], ['sum.value'], {}, { name: 'an_add_node' })
    .node('Mul', ['sum.value', 'second.copy'], ['y'], {}, { name: 'a_mul_node' })
    .output('y', 'float32', [1, 8, 10, 10])
    .toBytes();
  const model: ModelProto = decodeModelProto(bytes, 'test');
  model.docString = 'exported by a tool';
  compactModel(model, new Set(['the_layer']));
  const compacted = encodeModelProto(model);
  const graph = model.graph!;
  t.same(graph.initializer!.map((i) => i.name!.length <= 2), [true, true], 'two initializers left (copies merged, unused dropped), short names');
  t.same(graph.node!.map((n) => n.name ?? ''), ['the_layer', '', ''], 'the layer keeps its name, other node names go');
  t.same(graph.node!.map((n) => n.output![0]!.length <= 2 || n.output![0] === 'y'), [true, true, true]);
  t.same(graph.node![0]!.attribute!.map((a) => a.name), ['pads'], 'defaults and kernel_shape (the weight\'s own dims) dropped, pads kept');
  t.notOk(model.docString, 'doc string dropped');
  t.ok(compacted.length < bytes.length, `${compacted.length} < ${bytes.length} bytes`);
  const x = randomTensorOf([1, 8, 10, 10], 83);
  t.same(await runOrt(compacted, x), await runOrt(bytes, x), 'onnxruntime computes exactly the same outputs');
});
