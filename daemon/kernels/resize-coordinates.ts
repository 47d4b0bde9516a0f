/**
 * Host-side coordinate mapping for Resize / Upsample: output sizes, effective scales and, per axis, which
 * input elements (and weights) each output coordinate reads.
 *
 * Everything is computed once at build time with the float32 arithmetic onnxruntime uses (Math.fround at
 * every step), so ties in nearest rounding land on the same side as the oracle; the GPU then only looks
 * results up (or, for integer upsampling, recomputes them with exact integer division).
 */

export type CoordinateMode = 'half_pixel' | 'half_pixel_symmetric' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_half_pixel_for_nn';
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil' | 'simple';
export type AspectPolicy = 'stretch' | 'not_larger' | 'not_smaller';

export const COORDINATE_MODES: readonly string[] = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
export const NEAREST_MODES: readonly string[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

const f = Math.fround;

/** Output extents from per-axis scales: trunc(float(scale · in)). */
export function outputFromScales(input: number[], scales: number[]): number[] {
  return input.map((d, i) => Math.trunc(f(f(scales[i]) * d)));
}

/**
 * Scales from requested sizes (float(out) / float(in)), adjusted by keep_aspect_ratio_policy over the
 * resized axes; returns the final output extents too.
 */
export function scalesFromSizes(input: number[], sizes: number[], resized: boolean[], policy: AspectPolicy): { scales: number[]; output: number[] } {
  const scales = input.map((d, i) => (d === 0 ? 1 : f(f(sizes[i]) / f(d))));
  const output = [...sizes];
  if (policy === 'stretch') return { scales, output };
  const chosen = scales.filter((_, i) => resized[i]);
  const scale = policy === 'not_larger' ? Math.min(...chosen) : Math.max(...chosen);
  for (let i = 0; i < input.length; i++) {
    if (resized[i]) {
      scales[i] = scale;
      output[i] = roundHalfAway(f(scale * input[i]));
    } else {
      scales[i] = 1;
      output[i] = input[i];
    }
  }
  return { scales, output };
}

function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/** The input coordinate (float) an output coordinate maps to, as onnxruntime computes it. */
export function originalCoordinate(mode: CoordinateMode, x: number, scale: number, outLength: number, inLength: number): number {
  const s = f(scale);
  switch (mode) {
    case 'asymmetric': return f(x / s);
    case 'pytorch_half_pixel': return outLength > 1 ? f(f(f(x + 0.5) / s) - 0.5) : 0;
    case 'tf_half_pixel_for_nn': return f(f(x + 0.5) / s);
    case 'align_corners': return outLength === 1 ? 0 : f(f(x * (inLength - 1)) / (outLength - 1));
    case 'half_pixel_symmetric': {
      // onnxruntime evaluates (x + 0.5) / scale in double here
      const outputWidth = f(s * inLength);
      const adjustment = f(outLength / outputWidth);
      const center = f(inLength / 2);
      const offset = f(center * f(1 - adjustment));
      return f(offset + (x + 0.5) / s - 0.5);
    }
    default: return f(f(f(x + 0.5) / s) - 0.5);
  }
}

function nearestIndex(mode: NearestMode, x: number, downsample: boolean): number {
  switch (mode) {
    case 'simple': return downsample ? Math.ceil(x) : Math.trunc(x);
    case 'round_prefer_ceil': return roundHalfAway(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    default: return x === Math.trunc(x) + 0.5 ? Math.floor(x) : roundHalfAway(x);
  }
}

/** Per output coordinate, the nearest input coordinate (clamped to the input). */
export function nearestMap(mode: CoordinateMode, nearest: NearestMode, scale: number, inLength: number, outLength: number): number[] {
  const map: number[] = [];
  for (let o = 0; o < outLength; o++) {
    // onnxruntime maps 1:1 without any transformation when the scale is exactly 1
    if (f(scale) === 1) {
      map.push(Math.min(o, inLength - 1));
      continue;
    }
    const original = originalCoordinate(mode, o, scale, outLength, inLength);
    map.push(Math.max(0, Math.min(inLength - 1, nearestIndex(nearest, original, f(scale) < 1))));
  }
  return map;
}

export interface LinearTap {
  i0: number;
  i1: number;
  w0: number;
  w1: number;
}

/** Per output coordinate, the two input neighbours and their weights (onnxruntime's bilinear setup). */
export function linearMap(mode: CoordinateMode, scale: number, inLength: number, outLength: number): LinearTap[] {
  const taps: LinearTap[] = [];
  for (let o = 0; o < outLength; o++) {
    const original = originalCoordinate(mode, o, scale, outLength, inLength);
    const x = Math.max(0, Math.min(original, inLength - 1));
    const i0 = Math.min(Math.trunc(x), inLength - 1);
    const i1 = Math.min(i0 + 1, inLength - 1);
    if (i0 === i1) taps.push({ i0, i1, w0: 0.5, w1: 0.5 });
    else taps.push({ i0, i1, w0: f(Math.abs(f(x - i1))), w1: f(Math.abs(f(x - i0))) });
  }
  return taps;
}

/** The integer factor k when map[o] = floor(o / k) for every o (pure integer upsampling), else null. */
export function integerUpsampleFactor(map: number[], inLength: number): number | null {
  const k = map.length / inLength;
  if (!Number.isInteger(k) || k < 1) return null;
  return map.every((v, o) => v === Math.floor(o / k)) ? k : null;
}
