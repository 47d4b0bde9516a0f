/**
 * GPTQ (Frantar et al., 2022): quantizes a layer one input feature (column) at a time and spreads each column's
 * rounding error over the not-yet-quantized columns through the inverse Hessian, so that the layer's output on
 * the calibration data moves as little as possible. Follows the reference implementation: damped H, upper
 * Cholesky factor of H⁻¹, lazy batch updates in blocks of `blockSize` columns, optional act-order.
 *
 * Scales: per-channel scales come from the whole row before any update (as in the reference); block (group)
 * scales are computed when the first column of the group is reached, from the group's current, error-updated
 * values (the reference's "groups computed as reached"). Groups always follow the ONNX block layout, also with
 * act-order (the reference's static_groups), so the result is a plain DequantizeLinear-21 weight.
 *
 * Input features the calibration never saw (H[i,i] = 0) get H[i,i] = 1: their weights are rounded to nearest
 * and pass no error on. Unlike the reference they are not zeroed, so inputs the calibration missed still work.
 */
import { compressError, validateWeights } from './checks.ts';
import { calibrationsFor, elementIndex, gatherRows, type LayerLayout, type RowGroup } from './layer-layout.ts';
import { upperCholeskyOfInverse } from './linalg.ts';
import { dequantizeValue, groupParams, packResult, quantRangeOf, quantizeValue, type GroupParams } from './rtn.ts';
import { scaleCountFor, scaleGroups, scaleIndexMap, type ScaleGroups } from './scale-layout.ts';
import type { LayerCalibration, QuantizedTensor, QuantSpec } from './types.ts';

export interface GptqOptions {
  /** Damping added to H's diagonal, as a fraction of its mean diagonal (default 0.01). */
  dampPercent?: number;
  /** Columns per lazy batch update (default 128). */
  blockSize?: number;
  /** Quantize the columns with the largest H[i,i] first (default true). */
  actOrder?: boolean;
  /** 'matmul': B [K, N]; 'conv': W [M, C/g, kh, kw] (calib: one per group). */
  layout: LayerLayout;
  /** Range shrink per scale or for all scales, e.g. from searchClipRatios (default 1). */
  clipRatio?: Float32Array | number;
  /** Tensor name for error messages. */
  name?: string;
}

/** When damped H still is not positive definite (rank-deficient statistics), damping grows ×10 this many times. */
const DAMPING_RETRIES = 4;

/**
 * GPTQ-quantizes `weights` (dims row-major) to `spec`. Throws EDGERUN_ERR_COMPRESS (naming options.name) on
 * NaN/Inf in the weight or the statistics, mismatched statistics, or a Hessian that damping cannot make
 * positive definite.
 */
export function quantizeGptq(weights: Float32Array, dims: number[], spec: QuantSpec, calib: LayerCalibration | LayerCalibration[], options: GptqOptions): QuantizedTensor {
  const name = options.name ?? 'weight';
  validateWeights(weights, dims, spec, name);
  const { geometry, calibs } = calibrationsFor(dims, options.layout, calib, name);
  const map = scaleIndexMap(dims, spec.granularity);
  const scaleCount = scaleCountFor(dims, spec.granularity);
  const clip = options.clipRatio ?? 1;
  if (typeof clip !== 'number' && clip.length !== scaleCount) throw compressError(name, `clipRatio holds ${clip.length} ratios for ${scaleCount} scales`);
  const state: GptqState = {
    spec,
    map,
    members: scaleGroups(map, scaleCount),
    params: new Array<GroupParams | undefined>(scaleCount),
    values: new Int16Array(weights.length),
    weights,
    clip,
    position: new Int32Array(weights.length).fill(-1),
  };
  geometry.groups.forEach((group, g) => quantizeRowGroup(state, group, calibs[g]!, options, calibs.length > 1 ? `${name} (group ${g})` : name));
  return packResult(spec, dims, state.values, state.params as GroupParams[]);
}

interface GptqState {
  spec: QuantSpec;
  map: Int32Array;
  members: ScaleGroups;
  params: (GroupParams | undefined)[];
  values: Int16Array;
  weights: Float32Array;
  clip: Float32Array | number;
  /** Element → its index in the current row group's working copy, −1 outside it. */
  position: Int32Array;
}

function quantizeRowGroup(state: GptqState, group: RowGroup, calib: LayerCalibration, options: GptqOptions, name: string): void {
  const k = group.features;
  const rows = group.rows;
  const hessian = Float64Array.from(calib.hessian);
  for (let i = 0; i < k; i++) if (hessian[i * k + i] === 0) hessian[i * k + i] = 1;
  const order = Int32Array.from({ length: k }, (_, i) => i);
  if (options.actOrder ?? true) order.sort((a, b) => hessian[b * k + b]! - hessian[a * k + a]! || a - b);
  const u = dampedInverseFactor(hessian, order, k, options.dampPercent ?? 0.01, name);

  // Working copy: rows × k, columns in processing order.
  const original = gatherRows(state.weights, group);
  const w = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) w[r * k + c] = original[r * k + order[c]!]!;
  // Where each element of the group sits in `w`, so that a scale group's current values can be read.
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) state.position[elementIndex(group, r, order[c]!)] = r * k + c;

  const range = quantRangeOf(state.spec);
  const blockSize = Math.max(1, options.blockSize ?? 128);
  const errors = new Float64Array(rows * blockSize);
  for (let i1 = 0; i1 < k; i1 += blockSize) {
    const i2 = Math.min(i1 + blockSize, k);
    const width = i2 - i1;
    for (let i = i1; i < i2; i++) {
      const d = u[i * k + i]!;
      for (let r = 0; r < rows; r++) {
        const element = elementIndex(group, r, order[i]!);
        const s = state.map[element]!;
        const params = state.params[s] ?? (state.params[s] = paramsFromCurrent(state, s, w));
        const value = w[r * k + i]!;
        const q = quantizeValue(value, params, range);
        state.values[element] = q;
        const err = (value - dequantizeValue(q, params)) / d;
        errors[r * width + (i - i1)] = err;
        if (err === 0) continue;
        const rowBase = r * k;
        const uBase = i * k;
        for (let j = i + 1; j < i2; j++) w[rowBase + j]! -= err * u[uBase + j]!;
      }
    }
    if (i2 === k) break;
    for (let r = 0; r < rows; r++) {
      const rowBase = r * k;
      for (let t = 0; t < width; t++) {
        const err = errors[r * width + t]!;
        if (err === 0) continue;
        const uBase = (i1 + t) * k;
        for (let j = i2; j < k; j++) w[rowBase + j]! -= err * u[uBase + j]!;
      }
    }
  }
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) state.position[elementIndex(group, r, c)] = -1;
}

/** U with (H_perm + damp·I)⁻¹ = UᵀU, H permuted to processing order. */
function dampedInverseFactor(hessian: Float64Array, order: Int32Array, k: number, dampPercent: number, name: string): Float64Array {
  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += hessian[i * k + i]!;
  meanDiag /= k;
  let damp = dampPercent * meanDiag;
  for (let attempt = 0; attempt <= DAMPING_RETRIES; attempt++) {
    const permuted = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      const oi = order[i]! * k;
      for (let j = 0; j < k; j++) permuted[i * k + j] = hessian[oi + order[j]!]!;
      permuted[i * k + i]! += damp;
    }
    const u = upperCholeskyOfInverse(permuted, k);
    if (u) return u;
    damp = Math.max(damp * 10, 1e-8 * Math.max(meanDiag, 1));
  }
  throw compressError(name, `GPTQ: the calibration Hessian is not positive definite even with damping ${damp}`, { step: 'gptq' });
}

/** A scale's params from its members' current values (error-updated where they lie in this row group). */
function paramsFromCurrent(state: GptqState, s: number, w: Float64Array): GroupParams {
  let min = Infinity;
  let max = -Infinity;
  for (let m = state.members.offsets[s]!; m < state.members.offsets[s + 1]!; m++) {
    const element = state.members.members[m]!;
    const at = state.position[element]!;
    const v = at < 0 ? state.weights[element]! : w[at]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return groupParams(min, max, state.spec, typeof state.clip === 'number' ? state.clip : state.clip[s]!);
}
