/**
 * How a weight's elements line up with the input features its calibration statistics describe. Every
 * calibration-driven method works on "rows": one row per output, K input features per row, with H [K×K].
 *
 * - 'matmul': B is [K, N]; output n's row is column n of B (element k·N + n); one calibration.
 * - 'conv': W is [M, C/g, kh, kw] (any spatial rank); output m's row is W[m] flattened (C/g·kh·kw, in that
 *   order: the im2col feature order); with `group` g the outputs split into g consecutive blocks of M/g, block i
 *   reading the input channels of group i, so `calib` holds one LayerCalibration per group.
 */
import { compressError, validateCalibration } from './checks.ts';
import type { LayerCalibration } from './types.ts';

export type LayerLayout = 'matmul' | 'conv';

/** The outputs (rows) that share one calibration: element (r, j) is at base + r·rowStride + j·colStride. */
export interface RowGroup {
  /** Index of the first output along the output axis. */
  firstOutput: number;
  rows: number;
  features: number;
  base: number;
  rowStride: number;
  colStride: number;
}

export interface LayerGeometry {
  /** Output count (N for MatMul, M for Conv). */
  outputs: number;
  groups: RowGroup[];
}

/** Splits a weight into row groups; `groupCount` is the conv group count (1 for MatMul). */
export function layerGeometry(dims: readonly number[], layout: LayerLayout, groupCount: number, tensorName: string): LayerGeometry {
  if (layout === 'matmul') {
    if (dims.length !== 2) throw compressError(tensorName, `a MatMul weight must be [K, N], got [${dims.join(', ')}]`);
    if (groupCount !== 1) throw compressError(tensorName, `a MatMul weight takes one calibration, got ${groupCount}`);
    const [k, n] = dims as [number, number];
    return { outputs: n, groups: [{ firstOutput: 0, rows: n, features: k, base: 0, rowStride: 1, colStride: n }] };
  }
  if (dims.length < 3) throw compressError(tensorName, `a Conv weight must be [M, C/g, k…], got [${dims.join(', ')}]`);
  const m = dims[0]!;
  if (!Number.isInteger(groupCount) || groupCount < 1 || m % groupCount !== 0) {
    throw compressError(tensorName, `${m} output channels do not split into ${groupCount} groups`);
  }
  const features = dims.slice(1).reduce((a, b) => a * b, 1);
  const perGroup = m / groupCount;
  const groups: RowGroup[] = [];
  for (let g = 0; g < groupCount; g++) {
    groups.push({ firstOutput: g * perGroup, rows: perGroup, features, base: g * perGroup * features, rowStride: features, colStride: 1 });
  }
  return { outputs: m, groups };
}

/** Accepts one calibration or one per conv group, validates each against the weight and returns the list. */
export function calibrationsFor(dims: readonly number[], layout: LayerLayout, calib: LayerCalibration | LayerCalibration[], tensorName: string): { geometry: LayerGeometry; calibs: LayerCalibration[] } {
  const calibs = Array.isArray(calib) ? calib : [calib];
  if (calibs.length === 0) throw compressError(tensorName, 'no calibration given');
  const geometry = layerGeometry(dims, layout, calibs.length, tensorName);
  calibs.forEach((c, g) => validateCalibration(c, geometry.groups[g]!.features, calibs.length > 1 ? `${tensorName} (group ${g})` : tensorName));
  return { geometry, calibs };
}

/** Flat element index of (row r, feature j) of a row group. */
export function elementIndex(group: RowGroup, r: number, j: number): number {
  return group.base + r * group.rowStride + j * group.colStride;
}

/** The group's rows as a float64 [rows × features] matrix. */
export function gatherRows(values: ArrayLike<number>, group: RowGroup): Float64Array {
  const out = new Float64Array(group.rows * group.features);
  for (let r = 0; r < group.rows; r++) {
    for (let j = 0; j < group.features; j++) out[r * group.features + j] = values[group.base + r * group.rowStride + j * group.colStride]!;
  }
  return out;
}
