/**
 * Per-layer weight quantization: the spec a layer gets for a bit width, the rules that keep some layers at
 * 8 bits in an INT4 recipe, and the method — round-to-nearest, or with calibration statistics the best of RTN,
 * clipping search and GPTQ by expected output error (error-metrics.ts, from H).
 */
import { layerOutputError } from '../quant/error-metrics.ts';
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
  method: 'rtn' | 'clip' | 'gptq' | 'cast' | 'none';
  bytes: number;
  /** Expected relative output error of this layer alone (from H), when calibrated. */
  estimatedError?: number;
  /** Why the layer has this precision (a rule, the recipe, the bit allocation). */
  reason: string;
}

export function specFor(layer: QuantLayer, bits: 4 | 8, step: Pick<WeightStep, 'scheme' | 'group'>): QuantSpec {
  return {
    bits,
    scheme: step.scheme,
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
  let estimatedError: number | undefined;
  if (canUseCalibration(layer, stats)) {
    const layout = layoutOf(layer);
    const errorOf = (q: QuantizedTensor): number => layerOutputError(weights, dequantize(q), layer.dims, stats.calib, layout, name).relative;
    estimatedError = errorOf(rtn);
    if (step.method !== 'rtn') {
      // Candidates, each kept only if its expected output error beats the best so far: clipping search, then
      // GPTQ starting from the searched clip ratios.
      const clip = searchClipRatios(weights, layer.dims, spec, { calib: stats.calib, layout, name });
      const candidates: [LayerChoice['method'], () => QuantizedTensor][] = [
        ['clip', () => clip.quantized],
        ['gptq', () => quantizeGptq(weights, layer.dims, spec, stats.calib, { layout, name, clipRatio: clip.clipRatio })],
      ];
      for (const [candidateMethod, make] of candidates) {
        const candidate = make();
        const error = errorOf(candidate);
        if (error < estimatedError || (step.method === 'gptq' && candidateMethod === 'gptq')) {
          quantized = candidate;
          method = candidateMethod;
          estimatedError = error;
        }
      }
    }
  }
  const format: LayerFormat = step.format === 'matmulnbits' && fitsMatMulNBits(layer, quantized)
    ? { kind: 'matmulnbits', quantized } : { kind: 'dq', quantized };
  return { layer, precision: bits === 4 ? 'int4' : 'int8', format, method, bytes: formatBytes(format, layer.params), estimatedError, reason };
}

export function keepFp32(layer: QuantLayer, reason: string): LayerChoice {
  return { layer, precision: 'fp32', format: { kind: 'fp32' }, method: 'none', bytes: layer.params * 4, reason };
}
