/**
 * AWQ-style activation-aware scaling (Lin et al., 2023): input features with large activations matter more, so
 * the weight rows they multiply are scaled up by s before quantization (finer relative steps for them) and the
 * activations are divided by s (folded into the previous op or a Mul node). s = meanAbs^α, normalised so that
 * √(max s · min s) = 1 as in the reference; α runs over a grid in [0, 1] and the α with the least expected output
 * error (the full-Hessian metric of error-metrics.ts) wins. α = 0 is plain round-to-nearest, so AWQ is never
 * worse than RTN on the calibration statistics.
 *
 * Input features: MatMul B [K, N] scales its K rows; Conv W [M, C/g, kh, kw] scales input channels (length C =
 * g·C/g), the salience of a channel being its im2col features' mean |x|.
 */
import { compressError, validateWeights } from './checks.ts';
import { hessianWeightedSquares } from './error-metrics.ts';
import { calibrationsFor, elementIndex, type LayerGeometry, type LayerLayout } from './layer-layout.ts';
import { dequantize, quantizeRtn } from './rtn.ts';
import type { LayerCalibration, QuantizedTensor, QuantSpec } from './types.ts';

export interface AwqOptions {
  layout: LayerLayout;
  /** α takes the values i/grid for i = 0..grid (default 20). */
  grid?: number;
  /**
   * α is chosen on at most this many outputs (evenly spaced, default 1024): the error costs outputs·K² per α.
   * The chosen α and α = 0 are then compared on all outputs, so the result is still never worse than RTN.
   */
  maxSearchOutputs?: number;
  name?: string;
}

export interface AwqResult {
  /** Per input feature (MatMul: K) or input channel (Conv: C); the weight was multiplied by these, so inputs must be divided by them. */
  inputScales: Float32Array;
  alpha: number;
  /** The quantized scaled weight W·diag(s). */
  quantized: QuantizedTensor;
  /** Expected output error (per calibration row) with the chosen α, and with α = 0 (RTN). */
  error: number;
  rtnError: number;
}

/** Salience floor relative to the largest channel: keeps dead channels from getting a zero scale. */
const SALIENCE_FLOOR = 1e-4;

/**
 * Searches α, returns the input scales s (divide the layer's input by them), the quantized W·diag(s) and the
 * output errors. Throws EDGERUN_ERR_COMPRESS on NaN/Inf or mismatched statistics.
 */
export function quantizeAwq(weights: Float32Array, dims: number[], spec: QuantSpec, calib: LayerCalibration | LayerCalibration[], options: AwqOptions): AwqResult {
  const name = options.name ?? 'weight';
  validateWeights(weights, dims, spec, name);
  const { geometry, calibs } = calibrationsFor(dims, options.layout, calib, name);
  const grid = options.grid ?? 20;
  if (!Number.isInteger(grid) || grid < 1) throw compressError(name, `AWQ grid ${grid} must be a positive integer`);
  const channelOf = inputChannelMap(dims, options.layout, geometry);
  const salience = channelSalience(channelOf, geometry, calibs);
  const searched = searchOutputs(geometry.outputs, options.maxSearchOutputs ?? 1024);
  const candidate = (alpha: number, outputs: Uint8Array | null): { inputScales: Float32Array; quantized: QuantizedTensor; error: number } => {
    const inputScales = scalesFor(salience, alpha);
    const scaled = Float32Array.from(weights, (v, e) => v * inputScales[channelOf[e]!]!);
    const quantized = quantizeRtn(scaled, dims, spec, { name });
    const restored = dequantize(quantized);
    for (let e = 0; e < restored.length; e++) restored[e] = restored[e]! / inputScales[channelOf[e]!]!;
    return { inputScales, quantized, error: outputError(weights, restored, geometry, calibs, outputs) };
  };
  let bestAlpha = 0;
  let bestError = Infinity;
  for (let i = 0; i <= grid; i++) {
    const { error } = candidate(i / grid, searched);
    if (error < bestError) {
      bestError = error;
      bestAlpha = i / grid;
    }
  }
  const rtn = candidate(0, null);
  const chosen = bestAlpha === 0 ? rtn : candidate(bestAlpha, null);
  const result = chosen.error <= rtn.error ? { ...chosen, alpha: bestAlpha } : { ...rtn, alpha: 0 };
  return { ...result, rtnError: rtn.error };
}

/** Marks an evenly spaced subset of `count` outputs of size `max`; null when every output is searched. */
function searchOutputs(count: number, max: number): Uint8Array | null {
  if (count <= max) return null;
  const marked = new Uint8Array(count);
  for (let i = 0; i < max; i++) marked[Math.floor((i * count) / max)] = 1;
  return marked;
}

/** For each weight element, the index of the input feature/channel its scale comes from. */
function inputChannelMap(dims: number[], layout: LayerLayout, geometry: LayerGeometry): Int32Array {
  const map = new Int32Array(dims.reduce((a, b) => a * b, 1));
  const perChannel = layout === 'conv' ? dims.slice(2).reduce((a, b) => a * b, 1) : 1;
  const channelsPerGroup = layout === 'conv' ? dims[1]! : dims[0]!;
  geometry.groups.forEach((group, g) => {
    for (let r = 0; r < group.rows; r++) {
      for (let j = 0; j < group.features; j++) map[elementIndex(group, r, j)] = g * channelsPerGroup + Math.floor(j / perChannel);
    }
  });
  return map;
}

function channelSalience(channelOf: Int32Array, geometry: LayerGeometry, calibs: LayerCalibration[]): Float64Array {
  const channels = channelOf.reduce((a, c) => Math.max(a, c + 1), 0);
  const sum = new Float64Array(channels);
  const count = new Float64Array(channels);
  geometry.groups.forEach((group, g) => {
    if (group.rows === 0) return;
    for (let j = 0; j < group.features; j++) {
      const c = channelOf[elementIndex(group, 0, j)]!;
      sum[c]! += calibs[g]!.meanAbs[j]!;
      count[c]!++;
    }
  });
  return sum.map((s, c) => s / count[c]!);
}

function scalesFor(salience: Float64Array, alpha: number): Float32Array {
  let top = 0;
  for (const v of salience) top = Math.max(top, v);
  const floor = top > 0 ? top * SALIENCE_FLOOR : 1;
  const raw = Float64Array.from(salience, (v) => Math.max(v, floor) ** alpha);
  let lo = Infinity;
  let hi = 0;
  for (const v of raw) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const norm = Math.sqrt(lo * hi);
  return Float32Array.from(raw, (v) => v / norm);
}

/** Expected output error over all outputs, or over the marked ones. */
function outputError(weights: Float32Array, restored: Float32Array, geometry: LayerGeometry, calibs: LayerCalibration[], outputs: Uint8Array | null): number {
  let total = 0;
  geometry.groups.forEach((group, g) => {
    const k = group.features;
    const delta = new Float64Array(group.rows * k);
    for (let r = 0; r < group.rows; r++) {
      if (outputs && !outputs[group.firstOutput + r]) continue;
      for (let j = 0; j < k; j++) {
        const e = elementIndex(group, r, j);
        delta[r * k + j] = weights[e]! - restored[e]!;
      }
    }
    total += hessianWeightedSquares(delta, group.rows, calibs[g]!.hessian, k) / calibs[g]!.rows;
  });
  return total;
}

/**
 * The statistics the scaled weight W·diag(s) sees (inputs x/s): H'[i,j] = H[i,j]/(s_i·s_j), meanAbs/s, mean/s —
 * so GPTQ, clipping search or bias correction can run on the AWQ-scaled weight.
 */
export function scaleCalibration(calib: LayerCalibration | LayerCalibration[], inputScales: Float32Array, dims: number[], layout: LayerLayout, name = 'weight'): LayerCalibration[] {
  const { geometry, calibs } = calibrationsFor(dims, layout, calib, name);
  const channelOf = inputChannelMap(dims, layout, geometry);
  const channels = channelOf.reduce((a, c) => Math.max(a, c + 1), 0);
  if (inputScales.length !== channels) throw compressError(name, `${inputScales.length} input scales for ${channels} input channels`);
  return geometry.groups.map((group, g) => {
    const c = calibs[g]!;
    const k = group.features;
    const s = Float64Array.from({ length: k }, (_, j) => inputScales[channelOf[elementIndex(group, 0, j)]!]!);
    const hessian = new Float64Array(k * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) hessian[i * k + j] = c.hessian[i * k + j]! / (s[i]! * s[j]!);
    return { rows: c.rows, features: k, hessian, meanAbs: c.meanAbs.map((v, j) => v / s[j]!), mean: c.mean.map((v, j) => v / s[j]!) };
  });
}
