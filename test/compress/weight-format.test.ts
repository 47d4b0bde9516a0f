/**
 * Weight formats as onnxruntime-node and edgerun's own decoder read them: INT4/UINT4 blocked and INT8
 * per-channel DequantizeLinear compute exactly what the dequantized float weights compute; MatMulNBits agrees
 * with DequantizeLinear; packed int4 initializers decode to the quantizer's values; BatchNorm folding and the
 * Gemm transB rewrite keep outputs.
 */
import t from 'tap';
import { foldBatchNorms } from '../../daemon/compress/fold-batchnorm.ts';
import { findQuantLayers, layerWeight } from '../../daemon/compress/layers.ts';
import {
  cloneModelProto, decodeModelProto, encodeModelProto, floatTensor, NameAllocator, type ModelProto,
} from '../../daemon/compress/model-proto.ts';
import { upgradeOpset } from '../../daemon/compress/opset-upgrade.ts';
import { OrtModel } from '../../daemon/compress/ort-runner.ts';
import { effectiveWeight, specFor } from '../../daemon/compress/quantize-weights.ts';
import { applyLayerFormat, type LayerFormat } from '../../daemon/compress/weight-format.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { QuantizedTensor } from '../../daemon/quant/types.ts';
import { convNetModel, mlpModel, randomTensorOf, randomValues } from './helpers/models.ts';

/** Without graph optimizations: onnxruntime's fused integer kernels would quantize activations too (ort-runner.ts). */
async function run(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Float32Array> {
  const session = await OrtModel.open(bytes, 'test', 'disabled');
  try {
    return Object.values(await session.run(feeds))[0]!.data as Float32Array;
  } finally {
    await session.close();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

function prepared(bytes: Uint8Array): ModelProto {
  const model = decodeModelProto(bytes, 'test');
  upgradeOpset(model);
  foldBatchNorms(model.graph!);
  return model;
}

/** The model with every layer's weight quantized by `quantize`, in `kind` format, and the same model with the dequantized floats. */
function variants(model: ModelProto, quantize: (layerIndex: number, w: Float32Array, dims: number[]) => QuantizedTensor, kind: 'dq' | 'matmulnbits') {
  const quantized = cloneModelProto(model);
  const reference = cloneModelProto(model);
  const names = new NameAllocator(quantized.graph!);
  const tensors: QuantizedTensor[] = [];
  findQuantLayers(quantized.graph!).forEach((layer, i) => {
    const q = quantize(i, layerWeight(quantized.graph!, layer), layer.dims);
    tensors.push(q);
    applyLayerFormat(quantized, layer, { kind, quantized: q } as LayerFormat, names);
    reference.graph!.initializer = reference.graph!.initializer!.map((t) => (t.name === layer.weightName ? floatTensor(t.name!, layer.dims, dequantize(q)) : t));
  });
  return { quantized: encodeModelProto(quantized), reference: encodeModelProto(reference), tensors };
}

/** 1/s of each weight element's input channel: effectiveWeight of a weight that dequantizes to all ones. */
function inverseScaleOf(layer: ReturnType<typeof findQuantLayers>[number], scales: Float32Array, count: number): Float32Array {
  const ones: QuantizedTensor = {
    spec: { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } },
    dims: layer.dims, values: new Int16Array(count).fill(1), scale: new Float32Array(layer.dims[0]!).fill(1), zeroPoint: null, scaleDims: [layer.dims[0]!],
  };
  return effectiveWeight(layer, ones, scales);
}

const convFeeds = { x: randomTensorOf([1, 8, 10, 10], 5) };

for (const [bits, scheme] of [[4, 'symmetric'], [4, 'asymmetric'], [8, 'symmetric'], [8, 'asymmetric']] as const) {
  t.test(`INT${bits} ${scheme} DequantizeLinear on Conv (plain, depthwise, grouped), MatMul and Gemm equals the dequantized float model`, async (t) => {
    const model = prepared(convNetModel());
    const layers = findQuantLayers(model.graph!);
    t.same(layers.map((l) => l.kind), ['conv', 'conv', 'conv', 'matmul', 'gemm']);
    t.same(layers.map((l) => l.depthwise), [false, true, false, false, false]);
    const { quantized, reference, tensors } = variants(model,
      (i, w, dims) => quantizeRtn(w, dims, specFor(layers[i]!, bits, { scheme, group: 32 })), 'dq');
    const difference = maxDiff(await run(quantized, convFeeds), await run(reference, convFeeds));
    t.ok(difference < 1e-5, `max difference ${difference}`);
    if (bits === 4) {
      const decoded = decodeModel(quantized);
      const initializer = [...decoded.graph.initializers.entries()].find(([name]) => name.startsWith('fc.w_quantized'))!;
      t.equal(initializer[1].dtype, scheme === 'symmetric' ? 'int4' : 'uint4', 'edgerun decodes the packed int4 initializer');
      t.same(Array.from(initializer[1].data), Array.from(tensors[3]!.values), 'to the quantizer\'s values');
    }
  });
}

for (const scheme of ['symmetric', 'asymmetric'] as const) {
  t.test(`MatMulNBits (${scheme}, blocks of 32/64/128) computes what DequantizeLinear computes`, async (t) => {
    const model = prepared(mlpModel());
    const layers = findQuantLayers(model.graph!);
    const feeds = { x: randomTensorOf([2, 4, 64], 9) };
    for (const group of [32, 64, 128] as const) {
      const quantize = (i: number, w: Float32Array, dims: number[]) => quantizeRtn(w, dims, specFor(layers[i]!, 4, { scheme, group }));
      const dq = variants(model, quantize, 'dq');
      const nbits = variants(model, quantize, 'matmulnbits');
      t.ok(Buffer.from(nbits.quantized).includes(Buffer.from('MatMulNBits')));
      t.ok(maxDiff(await run(dq.quantized, feeds), await run(nbits.quantized, feeds)) < 1e-5, `group ${group}`);
    }
  });
}

t.test('AWQ input scales: the Mul on the layer input undoes W·diag(s) exactly, for convs (grouped, depthwise) and matrices', async (t) => {
  const model = prepared(convNetModel());
  const layers = findQuantLayers(model.graph!);
  const quantized = cloneModelProto(model);
  const reference = cloneModelProto(model);
  const names = new NameAllocator(quantized.graph!);
  findQuantLayers(quantized.graph!).forEach((layer, i) => {
    const channels = layer.kind === 'conv' ? layer.dims[1]! * layer.group : layer.dims[0]!;
    const scales = randomValues(channels, 40 + i, 0.5).map((v) => 1 + v);
    const w = layerWeight(quantized.graph!, layer);
    const inverse = inverseScaleOf(layer, scales, w.length);
    const scaledWeight = w.map((v, e) => v / inverse[e]!);
    const q = quantizeRtn(scaledWeight, layer.dims, specFor(layer, 4, { scheme: 'symmetric', group: 32 }));
    applyLayerFormat(quantized, layer, { kind: 'dq', quantized: q, inputScales: scales }, names);
    reference.graph!.initializer = reference.graph!.initializer!.map((x) => (x.name === layers[i]!.weightName ? floatTensor(x.name!, layer.dims, effectiveWeight(layer, q, scales)) : x));
  });
  t.equal(quantized.graph!.node!.filter((n) => n.opType === 'Mul').length, 5, 'one Mul per layer');
  const difference = maxDiff(await run(encodeModelProto(quantized), convFeeds), await run(encodeModelProto(reference), convFeeds));
  t.ok(difference < 1e-5, `max difference ${difference}`);
});

t.test('BatchNorm folds into the preceding Conv and Gemm transB=1 is stored as [K,N], outputs unchanged', async (t) => {
  const original = convNetModel();
  const model = decodeModelProto(original, 'test');
  upgradeOpset(model);
  t.equal(foldBatchNorms(model.graph!), 1);
  t.notOk(model.graph!.node!.some((n) => n.opType === 'BatchNormalization'));
  t.notOk(model.graph!.initializer!.some((i) => i.name!.startsWith('bn.')), 'BN parameters are gone');
  const gemm = findQuantLayers(model.graph!).find((l) => l.kind === 'gemm')!;
  t.same(gemm.dims, [64, 10]);
  t.ok(maxDiff(await run(original, convFeeds), await run(encodeModelProto(model), convFeeds)) < 1e-5);
});
