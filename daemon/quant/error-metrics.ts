/**
 * The output error a quantized weight causes on the calibration data, without the data: with H = Σ xᵀx over
 * `rows` activation rows, the expected squared output error per row is tr((W−Wq)ᵀ H (W−Wq)) / rows
 * (= mean over rows of ‖x(W−Wq)‖², summed over outputs). Used for sensitivity ranking and to compare methods.
 */
import { assertFinite, compressError } from './checks.ts';
import { calibrationsFor, gatherRows, type LayerLayout } from './layer-layout.ts';
import { dot } from './linalg.ts';
import type { LayerCalibration } from './types.ts';

export interface LayerOutputError {
  /** E‖x(W−Wq)‖² per activation row, summed over outputs. */
  error: number;
  /** E‖xW‖² per activation row: the output's energy. */
  reference: number;
  /** error / reference (0 when the output is identically 0). */
  relative: number;
}

/** Σ over rows of dᵀ H d for a [rows × K] matrix of row vectors d. */
export function hessianWeightedSquares(rowsMatrix: Float64Array, rows: number, hessian: Float64Array, features: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * features;
    for (let i = 0; i < features; i++) {
      const di = rowsMatrix[base + i]!;
      if (di === 0) continue;
      total += di * dot(hessian, i * features, rowsMatrix, base, features);
    }
  }
  return total;
}

/**
 * Expected output error of replacing `weights` by `approximation` (e.g. dequantize(q)), both in the weight's
 * layout, on a layer's calibration statistics (one per conv group for grouped convs).
 */
export function layerOutputError(weights: Float32Array, approximation: Float32Array, dims: number[], calib: LayerCalibration | LayerCalibration[], layout: LayerLayout, name = 'weight'): LayerOutputError {
  if (approximation.length !== weights.length) throw compressError(name, `approximation has ${approximation.length} values, the weight ${weights.length}`);
  assertFinite(weights, 'weight', name);
  assertFinite(approximation, 'approximation', name);
  const { geometry, calibs } = calibrationsFor(dims, layout, calib, name);
  let error = 0;
  let reference = 0;
  geometry.groups.forEach((group, g) => {
    const c = calibs[g]!;
    const w = gatherRows(weights, group);
    const delta = gatherRows(approximation, group);
    for (let i = 0; i < delta.length; i++) delta[i] = w[i]! - delta[i]!;
    error += hessianWeightedSquares(delta, group.rows, c.hessian, group.features) / c.rows;
    reference += hessianWeightedSquares(w, group.rows, c.hessian, group.features) / c.rows;
  });
  return { error, reference, relative: reference > 0 ? error / reference : 0 };
}
