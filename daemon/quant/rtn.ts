/**
 * Round-to-nearest quantization: the baseline every better method is measured against, and the scale/zero-point
 * rules the better methods reuse.
 *
 * Symmetric int4 uses scale = max(max/7, −min/8) rather than the common absmax/7: it is the smallest scale that
 * represents both extremes of the group without clipping, so it is never larger than absmax/7 (rounding error
 * ≤ scale/2 is never worse) and it puts the otherwise wasted −8 level to use when the group's largest magnitude
 * is negative. Symmetric int8 keeps [-127, 127] (types.ts) so scale = absmax/127.
 * Asymmetric ranges always include 0 and the zero point is an integer in [0, qmax], so 0.0 dequantizes to
 * exactly 0 (ONNX requires zero to be exactly representable: padding, ReLU outputs).
 * Rounding is half-to-even, as ONNX QuantizeLinear does.
 */
import { floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';
import { validateWeights, compressError } from './checks.ts';
import { scaleCountFor, scaleDimsFor, scaleIndexMap } from './scale-layout.ts';
import type { QuantizedTensor, QuantSpec } from './types.ts';

export { scaleDimsFor, scaleIndexOf, scaleIndexMap, scaleCountFor, scaleGroups, type ScaleGroups } from './scale-layout.ts';

/** The integer range a spec stores. */
export interface QuantRange {
  qmin: number;
  qmax: number;
}

/** A group's float32 scale and integer zero point (0 for symmetric). */
export interface GroupParams {
  scale: number;
  zeroPoint: number;
}

/** Scales below this quantize every value of the group to 0 anyway; a scale of 1 then keeps the tensor well-formed (and fp16-safe). */
const SMALLEST_SCALE = 1e-30;

export function quantRangeOf(spec: Pick<QuantSpec, 'bits' | 'scheme'>): QuantRange {
  if (spec.scheme === 'symmetric') return spec.bits === 8 ? { qmin: -127, qmax: 127 } : { qmin: -8, qmax: 7 };
  return spec.bits === 8 ? { qmin: 0, qmax: 255 } : { qmin: 0, qmax: 15 };
}

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and zero point for a group whose values span [min, max], with the range shrunk by `clipRatio` (1 = no
 * clipping; the clipping search tries smaller ratios). The scale is rounded to float32 before use so that what
 * the quantizer optimises is what DequantizeLinear computes.
 */
export function groupParams(min: number, max: number, spec: Pick<QuantSpec, 'bits' | 'scheme' | 'scaleFormat'>, clipRatio = 1): GroupParams {
  const { qmin, qmax } = quantRangeOf(spec);
  const lo = Math.min(min * clipRatio, 0);
  const hi = Math.max(max * clipRatio, 0);
  const round = spec.scaleFormat === 'float16' ? roundScaleToHalf : Math.fround;
  if (spec.scheme === 'symmetric') {
    const scale = round(Math.max(hi / qmax, lo / qmin));
    return { scale: scale > SMALLEST_SCALE ? scale : 1, zeroPoint: 0 };
  }
  const scale = round((hi - lo) / qmax);
  if (!(scale > SMALLEST_SCALE)) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(qmax, Math.max(0, roundHalfEven(-lo / scale))) };
}

/**
 * Smallest scale float16 holds to within 2⁻⁹ relative (subnormal spacing 2⁻²⁴ × 2⁸) and the largest float16:
 * scales outside stay float32 (storage.ts then keeps their tensor float32).
 */
const HALF_SMALLEST_SCALE = 2 ** -16;
const HALF_MAX = 65504;

/**
 * The scale rounded up to a float16 when float16 holds it closely enough, else the float32 rounding. Up, not to
 * nearest, so that the group's extreme values still fit the integer range unclipped, as with float32 scales.
 */
export function roundScaleToHalf(scale: number): number {
  let half = halfBitsToFloat(floatToHalfBits(scale));
  if (half < scale) half = halfBitsToFloat(floatToHalfBits(half) + 1);
  return half >= HALF_SMALLEST_SCALE && half <= HALF_MAX ? half : Math.fround(scale);
}

export function quantizeValue(x: number, params: GroupParams, range: QuantRange): number {
  const q = roundHalfEven(x / params.scale) + params.zeroPoint;
  return q < range.qmin ? range.qmin : q > range.qmax ? range.qmax : q;
}

export function dequantizeValue(q: number, params: GroupParams): number {
  return Math.fround((q - params.zeroPoint) * params.scale);
}

/** Per-scale minimum and maximum of `weights` under `map` (element → scale index). */
export function groupMinMax(weights: ArrayLike<number>, map: Int32Array, scaleCount: number): { min: Float64Array; max: Float64Array } {
  const min = new Float64Array(scaleCount).fill(Infinity);
  const max = new Float64Array(scaleCount).fill(-Infinity);
  for (let i = 0; i < map.length; i++) {
    const s = map[i]!;
    const v = weights[i]!;
    if (v < min[s]!) min[s] = v;
    if (v > max[s]!) max[s] = v;
  }
  return { min, max };
}

export interface RtnOptions {
  /** Range shrink per scale (length = scale count, e.g. from searchClipRatios) or one ratio for all; 1 = none. */
  clipRatio?: Float32Array | number;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * Round-to-nearest quantization of a row-major weight with per-channel or block scales (ONNX
 * DequantizeLinear-21 block_size semantics along spec.granularity.axis). Throws EDGERUN_ERR_COMPRESS on
 * NaN/Inf weights, bad dims or a clip-ratio array of the wrong length.
 */
export function quantizeRtn(weights: Float32Array, dims: number[], spec: QuantSpec, options: RtnOptions = {}): QuantizedTensor {
  const name = options.name ?? 'weight';
  validateWeights(weights, dims, spec, name);
  const map = scaleIndexMap(dims, spec.granularity);
  const scaleCount = scaleCountFor(dims, spec.granularity);
  const clip = options.clipRatio ?? 1;
  if (typeof clip !== 'number' && clip.length !== scaleCount) {
    throw compressError(name, `clipRatio holds ${clip.length} ratios for ${scaleCount} scales`);
  }
  const { min, max } = groupMinMax(weights, map, scaleCount);
  const params: GroupParams[] = [];
  for (let s = 0; s < scaleCount; s++) params.push(groupParams(min[s]!, max[s]!, spec, typeof clip === 'number' ? clip : clip[s]!));
  return quantizeWithParams(weights, dims, spec, map, params);
}

/** Quantizes with given per-scale params (shared by RTN, the clipping search and AWQ). */
export function quantizeWithParams(weights: ArrayLike<number>, dims: number[], spec: QuantSpec, map: Int32Array, params: readonly GroupParams[]): QuantizedTensor {
  const range = quantRangeOf(spec);
  const values = new Int16Array(map.length);
  for (let i = 0; i < map.length; i++) values[i] = quantizeValue(weights[i]!, params[map[i]!]!, range);
  return packResult(spec, dims, values, params);
}

/** Assembles a QuantizedTensor from quantized values and per-scale params. */
export function packResult(spec: QuantSpec, dims: number[], values: Int16Array, params: readonly GroupParams[]): QuantizedTensor {
  const scale = Float32Array.from(params, (p) => p.scale);
  const zeroPoint = spec.scheme === 'asymmetric' ? Uint8Array.from(params, (p) => p.zeroPoint) : null;
  return { spec, dims: [...dims], values, scale, zeroPoint, scaleDims: scaleDimsFor(dims, spec.granularity) };
}

/** x = (q − zeroPoint) · scale per element, in float32 as DequantizeLinear computes it. */
export function dequantize(q: QuantizedTensor): Float32Array {
  const map = scaleIndexMap(q.dims, q.spec.granularity);
  const out = new Float32Array(q.values.length);
  const zp = q.zeroPoint;
  for (let i = 0; i < out.length; i++) {
    const s = map[i]!;
    out[i] = (q.values[i]! - (zp ? zp[s]! : 0)) * q.scale[s]!;
  }
  return out;
}
