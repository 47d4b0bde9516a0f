/**
 * Label-free agreement between two outputs of the same model input: the accuracy gate compares a new version with
 * the package's reference outputs, shadow runs compare it with the previous version on live traffic. Both report
 * the fraction of compared items that agree, so one threshold means the same thing in both places.
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';

/**
 * 'argmax': one item per row of the last axis (a class decision); rows agree when their argmax index is the same
 *           (the first maximum wins, as in numpy; NaN never equals anything, so a row holding NaN disagrees).
 * 'allclose': one item per element; elements agree when |a - b| <= tolerance (absolute), NaN disagrees.
 */
export type AgreementMetric = 'argmax' | 'allclose';

export interface AgreementOptions {
  /** Absolute tolerance for 'allclose' (default 1e-4). */
  tolerance?: number;
  /** Names the compared output in errors. */
  name?: string;
}

export interface AgreementResult {
  agreeing: number;
  compared: number;
  /** agreeing / compared; 1 when nothing was compared (an empty tensor has no disagreement to report). */
  fraction: number;
}

export const DEFAULT_ALLCLOSE_TOLERANCE = 1e-4;

export function agreement(a: Tensor, b: Tensor, metric: AgreementMetric, options: AgreementOptions = {}): AgreementResult {
  const name = options.name ?? 'output';
  checkComparable(a, b, name);
  const { agreeing, compared } = metric === 'argmax'
    ? argmaxAgreement(a, b)
    : metric === 'allclose'
      ? allcloseAgreement(a, b, tolerance(options.tolerance, name))
      : unknownMetric(metric, name);
  return { agreeing, compared, fraction: compared === 0 ? 1 : agreeing / compared };
}

/** Sums several results (one per output, one per eval case) into one. */
export function combineAgreement(results: Iterable<AgreementResult>): AgreementResult {
  let agreeing = 0;
  let compared = 0;
  for (const r of results) {
    agreeing += r.agreeing;
    compared += r.compared;
  }
  return { agreeing, compared, fraction: compared === 0 ? 1 : agreeing / compared };
}

function checkComparable(a: Tensor, b: Tensor, name: string): void {
  if (a.dtype !== b.dtype) {
    throw new EdgerunError('EDGERUN_ERR_SHAPE', `agreement of '${name}': dtype ${a.dtype} differs from ${b.dtype}`, { output: name, dtypes: [a.dtype, b.dtype] });
  }
  const same = a.dims.length === b.dims.length && a.dims.every((d, i) => d === b.dims[i]);
  if (!same || a.data.length !== b.data.length) {
    throw new EdgerunError('EDGERUN_ERR_SHAPE', `agreement of '${name}': shape [${a.dims.join(',')}] differs from [${b.dims.join(',')}]`, { output: name, shapes: [a.dims, b.dims] });
  }
}

function tolerance(value: number | undefined, name: string): number {
  const tol = value ?? DEFAULT_ALLCLOSE_TOLERANCE;
  if (!Number.isFinite(tol) || tol < 0) {
    throw new EdgerunError('EDGERUN_ERR_CONFIG', `agreement of '${name}': tolerance must be a finite number >= 0, got ${tol}`, { output: name, tolerance: tol });
  }
  return tol;
}

function unknownMetric(metric: never, name: string): never {
  throw new EdgerunError('EDGERUN_ERR_CONFIG', `agreement of '${name}': unknown metric '${String(metric)}' (expected argmax or allclose)`, { output: name, metric });
}

function argmaxAgreement(a: Tensor, b: Tensor): { agreeing: number; compared: number } {
  const size = a.data.length;
  // A scalar is one row of one element.
  const rowLength = a.dims.length === 0 ? 1 : a.dims[a.dims.length - 1];
  if (size === 0 || rowLength === 0) return { agreeing: 0, compared: 0 };
  const rows = size / rowLength;
  let agreeing = 0;
  for (let row = 0; row < rows; row++) {
    const start = row * rowLength;
    const ia = argmaxOfRow(a.data, start, rowLength);
    if (ia >= 0 && ia === argmaxOfRow(b.data, start, rowLength)) agreeing++;
  }
  return { agreeing, compared: rows };
}

/** The first index of the row's maximum, or -1 when the row holds NaN (no decision can be read from it). */
function argmaxOfRow(data: ArrayLike<number>, start: number, length: number): number {
  let best = 0;
  let bestValue = data[start];
  if (Number.isNaN(bestValue)) return -1;
  for (let i = 1; i < length; i++) {
    const v = data[start + i];
    if (Number.isNaN(v)) return -1;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

function allcloseAgreement(a: Tensor, b: Tensor, tol: number): { agreeing: number; compared: number } {
  let agreeing = 0;
  const n = a.data.length;
  for (let i = 0; i < n; i++) {
    const x = a.data[i];
    const y = b.data[i];
    // Equal infinities agree (their difference is NaN); NaN never agrees.
    if (x === y || Math.abs(x - y) <= tol) agreeing++;
  }
  return { agreeing, compared: n };
}
