/**
 * Input validation shared by the quantizers: every public entry point checks its weights and calibration
 * statistics here so that a NaN/Inf or a mis-sized statistic fails loudly with the tensor's name instead of
 * silently producing garbage scales.
 */
import { EdgerunError } from '../errors.ts';
import type { LayerCalibration, QuantSpec } from './types.ts';

/** Throws EDGERUN_ERR_COMPRESS naming `tensorName` and `what` when any value is NaN or ±Inf. */
export function assertFinite(values: ArrayLike<number>, what: string, tensorName: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      throw new EdgerunError('EDGERUN_ERR_COMPRESS', `quantize ${tensorName}: ${what} holds ${v} at index ${i}`, { tensor: tensorName, what, index: i });
    }
  }
}

export function compressError(tensorName: string, message: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_COMPRESS', `quantize ${tensorName}: ${message}`, { tensor: tensorName, ...context });
}

/** Checks that `weights` has as many elements as `dims` describe, that the spec's axis exists and that all values are finite. */
export function validateWeights(weights: Float32Array, dims: readonly number[], spec: QuantSpec, tensorName: string): void {
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw compressError(tensorName, `weight dims [${dims.join(', ')}] must be positive integers`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== weights.length) throw compressError(tensorName, `weight has ${weights.length} values but dims [${dims.join(', ')}] need ${count}`);
  const axis = spec.granularity.axis;
  if (!Number.isInteger(axis) || axis < 0 || axis >= dims.length) {
    throw compressError(tensorName, `quantization axis ${axis} is outside a rank-${dims.length} weight`);
  }
  if (spec.granularity.kind === 'block' && !(Number.isInteger(spec.granularity.blockSize) && spec.granularity.blockSize > 0)) {
    throw compressError(tensorName, `block size ${spec.granularity.blockSize} must be a positive integer`);
  }
  if ((spec.bits !== 4 && spec.bits !== 8) || (spec.scheme !== 'symmetric' && spec.scheme !== 'asymmetric')) {
    throw compressError(tensorName, `unsupported quantization ${spec.bits}-bit ${spec.scheme}`);
  }
  assertFinite(weights, 'weight', tensorName);
}

/** Checks one LayerCalibration against the width its layer expects, and that every statistic is finite. */
export function validateCalibration(calib: LayerCalibration, features: number, tensorName: string): void {
  if (calib.features !== features) throw compressError(tensorName, `calibration has ${calib.features} features, the weight needs ${features}`);
  if (calib.hessian.length !== features * features) {
    throw compressError(tensorName, `calibration hessian has ${calib.hessian.length} values, expected ${features}×${features}`);
  }
  if (calib.meanAbs.length !== features || calib.mean.length !== features) {
    throw compressError(tensorName, `calibration meanAbs/mean must hold ${features} values`);
  }
  if (!(calib.rows > 0)) throw compressError(tensorName, `calibration holds no activation rows`);
  assertFinite(calib.hessian, 'calibration hessian', tensorName);
  assertFinite(calib.meanAbs, 'calibration meanAbs', tensorName);
  assertFinite(calib.mean, 'calibration mean', tensorName);
}
