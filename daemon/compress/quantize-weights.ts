/**
 * Per-layer weight quantization: the spec a layer gets for a bit width, the rules that keep some layers at
 * 8 bits in an INT4 recipe, and the method — round-to-nearest, or with calibration statistics the best of RTN,
 * clipping search, GPTQ and (INT4) AWQ scaling by expected output error (error-metrics.ts, from H).
 */
import { layerOutputError } from '../quant/error-metrics.ts';
import { quantizeAwq } from '../quant/awq.ts';
import { searchClipRatios } from '../quant/clip-search.ts';
import { quantizeGptq } from '../quant/gptq.ts';
import { dequantize, quantizeRtn } from '../quant/rtn.ts';
import type { QuantizedTensor, QuantSpec } from '../quant/types.ts';
import type { LayerStatistics } from './calibrate.ts';
import type { QuantLayer } from './layers.ts';
import type { LayerRule, WeightStep } from './recipes.ts';
import { fitsMatMulNBits, formatBytes, type LayerFormat } from './weight-format.ts';

export type Precision = 'fp32' | 'fp16' | 'int8' | 'int4';

export interface LayerChoice {
  layer: QuantLayer;
  precision: Precision;
  format: LayerFormat;
  method: 'rtn' | 'clip' | 'awq' | 'gptq' | 'cast' | 'none';
  bytes: number;
  /** Expected relative output error of this layer alone (from H), when calibrated. */
  estimatedError?: number;
  /** Why the layer has this precision (a rule, the recipe, the bit allocation). */
  reason: string;
}

export function specFor(layer: QuantLayer, bits: 4 | 8, step: Pick<WeightStep, 'scheme' | 'group' | 'scaleFormat'>): QuantSpec {
  return {
    bits,
    scheme: step.scheme,
    scaleFormat: step.scaleFormat ?? 'float32',
    granularity: bits === 8 ? { kind: 'channel', axis: layer.channelAxis } : { kind: 'block', axis: layer.reductionAxis, blockSize: step.group },
  };
}

/** The rule (if any) that keeps a layer at 8 bits in a 4-bit recipe. */
export function int8Rule(layer: QuantLayer, layerCount: number, rules: readonly LayerRule[]): LayerRule | undefined {
  if (rules.includes('depthwise') && layer.depthwise) return 'depthwise';
  if (rules.includes('first') && layer.index === 0) return 'first';
  if (rules.includes('last') && layer.index === layerCount - 1) return 'last';
  return undefined;
}

/** AWQ's α search costs K² per output and grid point: beyond this many input features it is skipped. */
const MAX_AWQ_FEATURES = 1536;

/**
 * The weight a layer effectively applies when its input is divided by AWQ's per-input-channel scales:
 * dequantize(q) with every element divided by its input channel's scale.
 */
export function effectiveWeight(layer: QuantLayer, q: QuantizedTensor, inputScales: Float32Array | undefined): Float32Array {
  const w = dequantize(q);
  if (!inputScales) return w;
  if (layer.kind !== 'conv') {
    const n = layer.dims[1]!;
    for (let i = 0; i < w.length; i++) w[i]! /= inputScales[Math.floor(i / n)]!;
    return w;
  }
  const [m, perGroup] = layer.dims as [number, number];
  const spatial = layer.dims.slice(2).reduce((a, b) => a * b, 1);
  const outputsPerGroup = m / layer.group;
  for (let i = 0; i < w.length; i++) {
    const out = Math.floor(i / (perGroup * spatial));
    const local = Math.floor(i / spatial) % perGroup;
    w[i]! /= inputScales[Math.floor(out / outputsPerGroup) * perGroup + local]!;
  }
  return w;
}

function layoutOf(layer: QuantLayer): 'matmul' | 'conv' {
  return layer.kind === 'conv' ? 'conv' : 'matmul';
}

/** GPTQ applies where statistics describe the weight's input: MatMul, Gemm and Conv (not ConvTranspose). */
function canUseCalibration(layer: QuantLayer, stats: LayerStatistics | undefined): stats is LayerStatistics {
  return stats !== undefined && layer.kind !== 'conv-transpose';
}

export function quantizeLayer(layer: QuantLayer, weights: Float32Array, bits: 4 | 8 | 16, step: WeightStep,
  stats: LayerStatistics | undefined, reason: string): LayerChoice {
  if (bits === 16) {
    const format: LayerFormat = { kind: 'fp16' };
    return { layer, precision: 'fp16', format, method: 'cast', bytes: formatBytes(format, layer.params), reason };
  }
  const spec = specFor(layer, bits, step);
  const name = layer.weightName;
  const rtn = quantizeRtn(weights, layer.dims, spec, { name });
  let quantized: QuantizedTensor = rtn;
  let method: LayerChoice['method'] = 'rtn';
  let inputScales: Float32Array | undefined;
  let estimatedError: number | undefined;
  if (canUseCalibration(layer, stats)) {
    const layout = layoutOf(layer);
    const errorOf = (q: QuantizedTensor, scales?: Float32Array): number =>
      layerOutputError(weights, effectiveWeight(layer, q, scales), layer.dims, stats.calib, layout, name).relative;
    estimatedError = errorOf(rtn);
    if (step.method !== 'rtn') {
      // Candidates, each kept only if its expected output error beats the best so far: clipping search, GPTQ
      // started from the searched clip ratios, and (4 bits) AWQ scaling, which costs a Mul on the layer input.
      const clip = searchClipRatios(weights, layer.dims, spec, { calib: stats.calib, layout, name });
      const features = layer.kind === 'conv' ? layer.dims.slice(1).reduce((a, b) => a * b, 1) : layer.dims[0]!;
      const candidates: [LayerChoice['method'], () => { q: QuantizedTensor; scales?: Float32Array }][] = [
        ['clip', () => ({ q: clip.quantized })],
        ['gptq', () => ({ q: quantizeGptq(weights, layer.dims, spec, stats.calib, { layout, name, clipRatio: clip.clipRatio }) })],
      ];
      if (bits === 4 && step.method === 'auto' && features <= MAX_AWQ_FEATURES) {
        candidates.push(['awq', () => {
          const awq = quantizeAwq(weights, layer.dims, spec, stats.calib, { layout, name });
          return { q: awq.quantized, scales: awq.alpha > 0 ? awq.inputScales : undefined };
        }]);
      }
      for (const [candidateMethod, make] of candidates) {
        const candidate = make();
        const error = errorOf(candidate.q, candidate.scales);
        if (error < estimatedError || (step.method === 'gptq' && candidateMethod === 'gptq')) {
          quantized = candidate.q;
          inputScales = candidate.scales;
          method = candidateMethod;
          estimatedError = error;
        }
      }
    }
  }
  const format: LayerFormat = step.format === 'matmulnbits' && fitsMatMulNBits(layer, quantized)
    ? { kind: 'matmulnbits', quantized, inputScales } : { kind: 'dq', quantized, inputScales };
  return { layer, precision: bits === 4 ? 'int4' : 'int8', format, method, bytes: formatBytes(format, layer.params), estimatedError, reason };
}

export function keepFp32(layer: QuantLayer, reason: string): LayerChoice {
  return { layer, precision: 'fp32', format: { kind: 'fp32' }, method: 'none', bytes: layer.params * 4, reason };
}
