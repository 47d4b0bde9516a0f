/**
 * The eval set of a package: `eval/<case>/inputs/<input>.npy` and `eval/<case>/outputs/<output>.npy` for every
 * model input and output of every case, with dtypes and shapes that fit the model's declarations.
 * Tensor names become file names the way `edgerun run --save` writes them, so its output folder can be used as
 * a case's reference outputs as is.
 */
import type { TensorInfo } from '../engine/types.ts';
import { isEdgerunError } from '../errors.ts';
import { safeFileStem } from '../cli/tensor-summary.ts';
import type { Tensor } from '../graph/ir.ts';
import { readNpyFile } from '../util/npy.ts';
import { DEFAULT_ALLCLOSE_TOLERANCE, type EvalMetric, type ManifestEval, packageError } from './manifest.ts';

export interface EvalCase {
  name: string;
  inputs: Map<string, Tensor>;
  /** Reference outputs the gate compares a new version's outputs with. */
  outputs: Map<string, Tensor>;
}

export interface EvalSet {
  metric: EvalMetric;
  /** Absolute tolerance for allclose (ignored by argmax). */
  tolerance: number;
  threshold: number;
  cases: EvalCase[];
}

/** Tensor name → file name inside a case's inputs/ or outputs/ folder, in declaration order. */
export function tensorFileNames(names: readonly string[]): Map<string, string> {
  const taken = new Set<string>();
  return new Map(names.map((name) => [name, `${safeFileStem(name, taken)}.npy`]));
}

export function evalFilePath(caseName: string, role: 'inputs' | 'outputs', fileName: string): string {
  return `eval/${caseName}/${role}/${fileName}`;
}

/** Why `dims` does not fit the declared dims, or undefined when it does (symbolic and unknown dims fit anything). */
export function shapeMismatch(declared: TensorInfo['dims'], dims: readonly number[]): string | undefined {
  if (!declared) return undefined;
  if (declared.length !== dims.length) return `rank ${dims.length} but the model declares rank ${declared.length}`;
  for (let i = 0; i < dims.length; i++) {
    const want = declared[i];
    if (typeof want === 'number' && want >= 0 && want !== dims[i]) {
      return `shape [${dims.join(', ')}] but the model declares [${declared.map((d) => d ?? '?').join(', ')}]`;
    }
  }
  return undefined;
}

/**
 * Reads and checks every case. `listed` maps each manifest path to its checked real path; a case file that is
 * not listed is an error (it would be unhashed), and so is a listed file under eval/ that no case claims.
 */
export async function loadEvalSet(spec: ManifestEval, io: { inputs: TensorInfo[]; outputs: TensorInfo[] },
  listed: Map<string, string>, source: string): Promise<EvalSet> {
  const inputFiles = tensorFileNames(io.inputs.map((i) => i.name));
  const outputFiles = tensorFileNames(io.outputs.map((o) => o.name));
  const claimed = new Set<string>();
  const cases: EvalCase[] = [];
  for (const caseName of spec.cases) {
    const read = async (role: 'inputs' | 'outputs', info: TensorInfo, fileName: string): Promise<Tensor> => {
      const relative = evalFilePath(caseName, role, fileName);
      const what = `eval case '${caseName}' ${role === 'inputs' ? 'input' : 'output'} '${info.name}'`;
      const real = listed.get(relative);
      if (!real) throw packageError(source, `${what}: ${relative} is not listed in manifest.files`, { file: relative, evalCase: caseName });
      claimed.add(relative);
      let tensor: Tensor;
      try {
        tensor = await readNpyFile(real);
      } catch (error) {
        if (!isEdgerunError(error)) throw error;
        throw packageError(source, `${what}: ${relative} ${error.message.replace(`${real}: `, '')}`, { file: relative, evalCase: caseName });
      }
      if (tensor.dtype !== info.dtype) {
        throw packageError(source, `${what}: ${relative} holds ${tensor.dtype} but the model's ${role === 'inputs' ? 'input' : 'output'} is ${info.dtype}`,
          { file: relative, evalCase: caseName });
      }
      const mismatch = shapeMismatch(info.dims, tensor.dims);
      if (mismatch) throw packageError(source, `${what}: ${relative} has ${mismatch}`, { file: relative, evalCase: caseName });
      return tensor;
    };
    const inputs = new Map<string, Tensor>();
    for (const info of io.inputs) inputs.set(info.name, await read('inputs', info, inputFiles.get(info.name)!));
    const outputs = new Map<string, Tensor>();
    for (const info of io.outputs) outputs.set(info.name, await read('outputs', info, outputFiles.get(info.name)!));
    cases.push({ name: caseName, inputs, outputs });
  }
  for (const relative of listed.keys()) {
    if (relative.startsWith('eval/') && !claimed.has(relative)) {
      throw packageError(source, `${relative} is listed under eval/ but belongs to no eval case input or output`, { file: relative });
    }
  }
  return {
    metric: spec.metric,
    tolerance: spec.tolerance ?? DEFAULT_ALLCLOSE_TOLERANCE,
    threshold: spec.threshold,
    cases,
  };
}
