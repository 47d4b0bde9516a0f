/**
 * What a new version goes through before it takes traffic: the input shapes to compile at load (every shape
 * of the eval set), warm-up runs, and the accuracy gate — agreement of its outputs with the package's
 * reference outputs (daemon/telemetry/agreement.ts, the same measure shadow runs use).
 */
import type { Session, TensorInfo } from '../engine/types.ts';
import { shapeSignature } from '../engine/feeds.ts';
import { isEdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, type Tensor } from '../graph/ir.ts';
import type { EvalSet } from '../package/eval-set.ts';
import type { ModelPackage } from '../package/read-package.ts';
import { agreement, combineAgreement, type AgreementResult } from '../telemetry/agreement.ts';

/** Every distinct input-shape signature of the eval set; else the declared shapes with symbolic dims as 1. */
export function shapesToCompile(pkg: ModelPackage): Map<string, number[]>[] {
  if (pkg.eval) {
    const distinct = new Map<string, Map<string, number[]>>();
    for (const evalCase of pkg.eval.cases) {
      const shapes = new Map([...evalCase.inputs].map(([name, tensor]) => [name, tensor.dims]));
      distinct.set(shapeSignature(shapes), shapes);
    }
    return [...distinct.values()];
  }
  const synthetic = syntheticFeeds(pkg.inputs);
  return synthetic ? [new Map([...synthetic].map(([name, tensor]) => [name, tensor.dims]))] : [];
}

/** Zeros of the declared shapes (symbolic or unknown dims as 1); undefined when an input declares no shape. */
export function syntheticFeeds(inputs: TensorInfo[]): Map<string, Tensor> | undefined {
  const feeds = new Map<string, Tensor>();
  for (const input of inputs) {
    if (!input.dims) return undefined;
    const dims = input.dims.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
    const count = elementCount(dims);
    feeds.set(input.name, { dtype: input.dtype, dims, data: isFloatDType(input.dtype) ? new Float32Array(count) : new Int32Array(count) });
  }
  return feeds;
}

/** The feeds of warm-up run `index`: the eval cases in turn, else synthetic zeros. */
export function warmupFeeds(pkg: ModelPackage, index: number): Map<string, Tensor> | undefined {
  if (pkg.eval && pkg.eval.cases.length > 0) return pkg.eval.cases[index % pkg.eval.cases.length].inputs;
  return syntheticFeeds(pkg.inputs);
}

export interface GateResult extends AgreementResult {
  threshold: number;
  passed: boolean;
  cases: number;
  /** Why the gate could not compare (an output missing or of another shape): the gate then fails. */
  problem?: string;
}

/** Runs every eval case and compares each output with its reference. `threshold` overrides the package's. */
export async function runGate(session: Session, evalSet: EvalSet, threshold = evalSet.threshold): Promise<GateResult> {
  const results: AgreementResult[] = [];
  for (const evalCase of evalSet.cases) {
    const { outputs } = await session.run(evalCase.inputs);
    for (const [name, reference] of evalCase.outputs) {
      const actual = outputs.get(name);
      if (!actual) return failed(threshold, evalSet.cases.length, `eval case '${evalCase.name}': the model produced no output '${name}'`);
      try {
        results.push(agreement(actual, reference, evalSet.metric, { tolerance: evalSet.tolerance, name }));
      } catch (error) {
        if (!isEdgerunError(error)) throw error;
        return failed(threshold, evalSet.cases.length, `eval case '${evalCase.name}': ${error.message}`);
      }
    }
  }
  const total = combineAgreement(results);
  return { ...total, threshold, passed: total.fraction >= threshold, cases: evalSet.cases.length };
}

function failed(threshold: number, cases: number, problem: string): GateResult {
  return { agreeing: 0, compared: 0, fraction: 0, threshold, passed: false, cases, problem };
}
