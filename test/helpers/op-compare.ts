/**
 * Checks one op case three ways against onnxruntime: the GPU kernel, and (optionally) the CPU `fold` with
 * every input treated as constant. Used by the kernel tests of the elementwise, shape and data-movement ops.
 */
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { opContextFor, runSingleOpOnGpu, runSingleOpOnOrt, type SingleOpCase } from './kernel-harness.ts';

export interface Tolerance {
  /** |actual - expected| <= abs + rel * |expected| per element. */
  abs: number;
  rel: number;
}

export const EXACT: Tolerance = { abs: 0, rel: 0 };

/** null when equal within tolerance, else a description of the first difference. */
export function difference(actual: Tensor, expected: Tensor, tolerance: Tolerance): string | null {
  if (actual.dims.join(',') !== expected.dims.join(',')) return `shape [${actual.dims}] vs expected [${expected.dims}]`;
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype} vs expected ${expected.dtype}`;
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i];
    const e = expected.data[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) && Number.isNaN(a)) continue;
      return `element ${i}: ${a} vs expected ${e}`;
    }
    if (a === e) continue;
    if (!(Math.abs(a - e) <= tolerance.abs + tolerance.rel * Math.abs(e))) return `element ${i}: ${a} vs expected ${e}`;
  }
  return null;
}

/** Runs the case on the CPU fold path with every input constant. */
export function foldCase(c: SingleOpCase): Tensor[] {
  const op = findOp(c.domain ?? '', c.opType);
  if (!op?.fold) throw new Error(`op ${c.opType} has no fold`);
  const ctx = opContextFor({ ...c, constantInputs: c.inputs.map((_, i) => i) });
  op.infer(ctx);
  return op.fold(ctx, ctx.constants);
}

export interface CheckResult {
  gpu: Tensor[];
  ort: Tensor[];
  fold?: Tensor[];
  /** Differences found (empty when everything matches). */
  problems: string[];
}

/**
 * Runs GPU and onnxruntime (and fold unless `fold: false`) and collects differences.
 * `foldTolerance` defaults to `tolerance`.
 */
export async function checkCase(
  c: SingleOpCase,
  tolerance: Tolerance,
  options: { fold?: boolean; foldTolerance?: Tolerance } = {},
): Promise<CheckResult> {
  const gpu = await runSingleOpOnGpu(c);
  const op = findOp(c.domain ?? '', c.opType)!;
  const ort = await runSingleOpOnOrt(c, op.infer(opContextFor(c)).map((t) => t.dtype));
  const problems: string[] = [];
  ort.forEach((expected, i) => {
    // the harness runs a view op (aliasesInput0) as a copy of output 0 only
    if (op.aliasesInput0 && i > 0) return;
    const problem = difference(gpu[i], expected, tolerance);
    if (problem) problems.push(`gpu output ${i}: ${problem}`);
  });
  let fold: Tensor[] | undefined;
  if (options.fold !== false) {
    fold = foldCase(c);
    ort.forEach((expected, i) => {
      const problem = difference(fold![i], expected, options.foldTolerance ?? tolerance);
      if (problem) problems.push(`fold output ${i}: ${problem}`);
    });
  }
  return { gpu, ort, ...(fold ? { fold } : {}), problems };
}
