/**
 * Clipping search: shrinking a group's range below its extremes trades a larger error on the few outliers for
 * a finer step on everything else. For each scale group independently, tries ratios from 1.0 down (default
 * 1.0, 0.95, …, 0.5) and keeps the one with the least weighted squared weight error, each element weighted by
 * the importance of its input feature: H[j,j]/rows (the diagonal of the output-error metric; default) or
 * meanAbs[j]², or 1 (plain MSE) without calibration. Ratio 1.0 is round-to-nearest, so the result is never
 * worse than RTN under the same weighting.
 */
import { compressError, validateWeights } from './checks.ts';
import { calibrationsFor, elementIndex, type LayerLayout } from './layer-layout.ts';
import { dequantizeValue, groupMinMax, groupParams, quantRangeOf, quantizeValue, quantizeWithParams, type GroupParams } from './rtn.ts';
import { scaleCountFor, scaleGroups, scaleIndexMap } from './scale-layout.ts';
import type { LayerCalibration, QuantizedTensor, QuantSpec } from './types.ts';

export const DEFAULT_CLIP_RATIOS: readonly number[] = Array.from({ length: 11 }, (_, i) => 1 - i * 0.05);

export interface ClipSearchOptions {
  /** Statistics of the layer's inputs (one per conv group); without them every element weighs 1. */
  calib?: LayerCalibration | LayerCalibration[];
  /** Required with calib: how elements map to input features. */
  layout?: LayerLayout;
  /** 'hessian': H[j,j]/rows (default); 'meanAbs': meanAbs[j]². */
  weighting?: 'hessian' | 'meanAbs';
  /** Candidate ratios in (0, 1] (default DEFAULT_CLIP_RATIOS). */
  ratios?: readonly number[];
  name?: string;
}

export interface ClipSearchResult {
  /** Chosen ratio per scale (pass to quantizeRtn/quantizeGptq as clipRatio). */
  clipRatio: Float32Array;
  quantized: QuantizedTensor;
  /** Weighted squared weight error with the chosen ratios, and with ratio 1 (RTN). */
  error: number;
  rtnError: number;
}

/**
 * Chooses a clipping ratio per scale and returns it with the weight quantized under it. Throws
 * EDGERUN_ERR_COMPRESS on NaN/Inf, ratios outside (0, 1], or calibration without a layout.
 */
export function searchClipRatios(weights: Float32Array, dims: number[], spec: QuantSpec, options: ClipSearchOptions = {}): ClipSearchResult {
  const name = options.name ?? 'weight';
  validateWeights(weights, dims, spec, name);
  const ratios = options.ratios ?? DEFAULT_CLIP_RATIOS;
  if (ratios.length === 0 || ratios.some((r) => !(r > 0 && r <= 1))) throw compressError(name, `clip ratios must lie in (0, 1], got [${ratios.join(', ')}]`);
  const importance = elementImportance(weights.length, dims, options, name);
  const map = scaleIndexMap(dims, spec.granularity);
  const scaleCount = scaleCountFor(dims, spec.granularity);
  const { offsets, members } = scaleGroups(map, scaleCount);
  const { min, max } = groupMinMax(weights, map, scaleCount);
  const range = quantRangeOf(spec);
  const clipRatio = new Float32Array(scaleCount);
  const params: GroupParams[] = [];
  let error = 0;
  let rtnError = 0;
  for (let s = 0; s < scaleCount; s++) {
    let best = Infinity;
    for (const ratio of ratios) {
      const candidate = groupParams(min[s]!, max[s]!, spec, Math.fround(ratio));
      let e = 0;
      for (let m = offsets[s]!; m < offsets[s + 1]!; m++) {
        const i = members[m]!;
        const d = weights[i]! - dequantizeValue(quantizeValue(weights[i]!, candidate, range), candidate);
        e += importance[i]! * d * d;
      }
      if (ratio === 1) rtnError += e;
      if (e < best) {
        best = e;
        clipRatio[s] = ratio;
        params[s] = candidate;
      }
    }
    error += best;
  }
  if (!ratios.includes(1)) rtnError = Number.NaN;
  return { clipRatio, quantized: quantizeWithParams(weights, dims, spec, map, params), error, rtnError };
}

function elementImportance(count: number, dims: number[], options: ClipSearchOptions, name: string): Float64Array {
  const importance = new Float64Array(count).fill(1);
  if (!options.calib) return importance;
  if (!options.layout) throw compressError(name, 'clip search with calibration needs the layer layout');
  const { geometry, calibs } = calibrationsFor(dims, options.layout, options.calib, name);
  geometry.groups.forEach((group, g) => {
    const c = calibs[g]!;
    const k = group.features;
    for (let j = 0; j < k; j++) {
      const weight = options.weighting === 'meanAbs' ? c.meanAbs[j]! ** 2 : c.hessian[j * k + j]! / c.rows;
      for (let r = 0; r < group.rows; r++) importance[elementIndex(group, r, j)] = weight;
    }
  });
  return importance;
}
