/** Shared pieces for the quantization tests: statistics from explicit activations and direct (data-driven) errors. */
import { LayerStatsAccumulator } from '../../../daemon/quant/calibration-stats.ts';
import type { LayerCalibration } from '../../../daemon/quant/types.ts';

/** Exact statistics of `rows` rows (no subsampling). */
export function calibrationOf(x: Float32Array, rows: number, features: number): LayerCalibration {
  const accumulator = new LayerStatsAccumulator(features, { maxRowsPerCall: rows });
  accumulator.addRows(x, rows);
  return accumulator.result();
}

/** Σ over rows of ‖x·(W − approx)‖² / rows for a MatMul B [K, N], computed from the activations themselves. */
export function directMatmulError(x: Float32Array, rows: number, w: Float32Array, approx: Float32Array, k: number, n: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += x[r * k + j]! * (w[j * n + c]! - approx[j * n + c]!);
      total += s * s;
    }
  }
  return total / rows;
}
