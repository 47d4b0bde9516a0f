/**
 * Bias correction: quantization shifts each output's mean by (Wq − W)ᵀ·E[x]; adding the opposite to the bias
 * removes that systematic shift (Nagel et al., 2019, empirical variant). For Conv, E[x] is the mean im2col row
 * (padding zeros included), so the correction is exact for the calibration data.
 */
import { assertFinite, compressError } from './checks.ts';
import { calibrationsFor, elementIndex, type LayerLayout } from './layer-layout.ts';
import type { LayerCalibration } from './types.ts';

/**
 * The per-output delta to ADD to the layer's bias (length N for MatMul [K,N], M for Conv) so that the quantized
 * layer's mean output on the calibration data equals the float layer's: −Σ_j (approx − W)[out, j]·E[x_j].
 */
export function biasCorrection(weights: Float32Array, approximation: Float32Array, dims: number[], calib: LayerCalibration | LayerCalibration[], layout: LayerLayout, name = 'weight'): Float32Array {
  if (approximation.length !== weights.length) throw compressError(name, `approximation has ${approximation.length} values, the weight ${weights.length}`);
  assertFinite(weights, 'weight', name);
  assertFinite(approximation, 'approximation', name);
  const { geometry, calibs } = calibrationsFor(dims, layout, calib, name);
  const delta = new Float32Array(geometry.outputs);
  geometry.groups.forEach((group, g) => {
    const mean = calibs[g]!.mean;
    for (let r = 0; r < group.rows; r++) {
      let shift = 0;
      for (let j = 0; j < group.features; j++) {
        const e = elementIndex(group, r, j);
        shift += (approximation[e]! - weights[e]!) * mean[j]!;
      }
      delta[group.firstOutput + r] = -shift;
    }
  });
  return delta;
}
