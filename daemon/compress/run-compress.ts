/**
 * `edgerun compress` end to end: resolve the recipe (built-in, file, or the target's recommendation), read the
 * calibration and eval samples, compress, check which targets the result fits, and write the package.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import { isFloatDType, type Tensor } from '../graph/ir.ts';
import { isValidModelName, isValidVersion } from '../package/versions.ts';
import { randomTensor, seededRandom } from '../cli/random-inputs.ts';
import { compressModel, type CompressResult } from './compress-model.ts';
import { decodeModelProto } from './model-proto.ts';
import { modelInputs, type ValueSpec } from './ort-runner.ts';
import { checkOutFolder, writePackage } from './package-writer.ts';
import type { Progress } from './progress.ts';
import { loadRecipeFile } from './recipe-file.ts';
import { builtinRecipe, describeRecipe, type Recipe } from './recipes.ts';
import { buildReport, reportMarkdown, type CompressReport } from './report.ts';
import { readSampleFolder, type Sample } from './sample-folder.ts';
import { checkFit, loadBuiltinTargets, loadTarget, type TargetProfile } from './targets.ts';

export const TASKS = ['ppocr-rec', 'ppocr-det', 'ppocr-cls'] as const;
export type Task = typeof TASKS[number];

export interface CompressOptions {
  model: string;
  recipe?: string;
  calib?: string;
  eval?: string;
  target?: string;
  task?: Task;
  name?: string;
  version?: string;
  sizeBudget?: number;
  accuracyBudget?: number;
  out: string;
  force: boolean;
  progress: Progress;
}

/** Eval cases held out of the calibration set when no --eval folder is given. */
const MAX_HELD_OUT = 4;
const RANDOM_EVAL_CASES = 3;
/** Eval agreement: the device must compute what onnxruntime computes on model.onnx, up to float reordering. */
const ARGMAX_THRESHOLD = 0.98;
const ALLCLOSE_THRESHOLD = 0.99;
const ALLCLOSE_RELATIVE_TOLERANCE = 0.01;

export async function resolveRecipe(recipe: string | undefined, target: TargetProfile | undefined): Promise<Recipe> {
  const name = recipe ?? target?.recommendedRecipe;
  if (!name) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', 'edgerun compress: give --recipe NAME|FILE or --target PROFILE', { command: 'compress' });
  const isFile = /\.(ya?ml|json)$/i.test(name) || name.includes('/');
  return isFile ? loadRecipeFile(name) : builtinRecipe(name);
}

function defaultName(modelPath: string): string {
  const stem = path.basename(modelPath).replace(/\.onnx$/i, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return stem.slice(0, 128) || 'model';
}

function randomEvalSamples(inputs: readonly ValueSpec[], like: Sample | undefined): Sample[] {
  const random = seededRandom(20240601);
  return Array.from({ length: RANDOM_EVAL_CASES }, (_, i) => {
    const feeds: Record<string, Tensor> = {};
    for (const input of inputs) {
      const dims = like?.feeds[input.name]?.dims ?? input.dims.map((d) => (typeof d === 'number' ? d : NaN));
      if (dims.some((d) => !Number.isFinite(d))) {
        throw new EdgerunError('EDGERUN_ERR_CLI_USAGE',
          `edgerun compress: input '${input.name}' has dynamic dims; give --eval DIR or --calib DIR so the eval set has inputs of a real shape`, { command: 'compress' });
      }
      feeds[input.name] = randomTensor({ name: input.name, dtype: input.dtype, dims } as never, dims, random);
    }
    return { source: `random input ${i}`, feeds };
  });
}

function splitSamples(calibration: Sample[], evalSamples: Sample[] | undefined, inputs: readonly ValueSpec[]): { calibration: Sample[]; evalSamples: Sample[] } {
  if (evalSamples) return { calibration, evalSamples };
  if (calibration.length >= 4) {
    const held = Math.min(MAX_HELD_OUT, Math.max(1, Math.floor(calibration.length / 5)));
    return { calibration: calibration.slice(0, -held), evalSamples: calibration.slice(-held) };
  }
  return { calibration, evalSamples: randomEvalSamples(inputs, calibration[0]) };
}

function evalSpec(task: Task | undefined, result: CompressResult): { metric: 'argmax' | 'allclose'; tolerance?: number; threshold: number } {
  if (task === 'ppocr-rec' || task === 'ppocr-cls') return { metric: 'argmax', threshold: ARGMAX_THRESHOLD };
  let maxAbs = 0;
  for (const c of result.evalCases) {
    for (const t of Object.values(c.outputs)) {
      if (!isFloatDType(t.dtype)) continue;
      for (const v of t.data) if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
    }
  }
  return { metric: 'allclose', tolerance: Math.fround(Math.max(1e-4, ALLCLOSE_RELATIVE_TOLERANCE * maxAbs)), threshold: ALLCLOSE_THRESHOLD };
}

export interface CompressOutcome {
  report: CompressReport;
  out: string;
}

export async function runCompress(options: CompressOptions): Promise<CompressOutcome> {
  const started = performance.now();
  const name = options.name ?? defaultName(options.model);
  if (!isValidModelName(name)) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --name '${name}' must match [A-Za-z0-9][A-Za-z0-9._-]*`, { command: 'compress' });
  const version = options.version ?? '1';
  if (!isValidVersion(version)) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --version '${version}' must be dotted numeric (e.g. 1 or 1.4.2)`, { command: 'compress' });
  await checkOutFolder(options.out, options.force);

  const target = options.target ? await loadTarget(options.target) : undefined;
  const recipe = await resolveRecipe(options.recipe, target);
  if (options.sizeBudget !== undefined || options.accuracyBudget !== undefined) {
    if (!recipe.mixed) {
      throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --size-budget/--accuracy-budget need a recipe with mixed precision ('mixed'), not '${recipe.name}'`, { command: 'compress' });
    }
    recipe.mixed = { ...recipe.mixed, sizeBudget: options.sizeBudget ?? recipe.mixed.sizeBudget, accuracyBudget: options.accuracyBudget ?? recipe.mixed.accuracyBudget };
  }

  let modelBytes: Uint8Array;
  try {
    modelBytes = await fs.readFile(options.model);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_IO', `${options.model}: cannot read the model (${(error as Error).message})`, { file: options.model }, { cause: error });
  }
  const inputs = modelInputs(decodeModelProto(modelBytes, options.model));
  const calibrationAll = options.calib ? await readSampleFolder(options.calib, inputs, 'EDGERUN_ERR_CALIBRATION', 'calibration') : [];
  const evalGiven = options.eval ? await readSampleFolder(options.eval, inputs, 'EDGERUN_ERR_EVALSET', 'eval') : undefined;
  if (recipe.weights.method === 'gptq' && calibrationAll.length === 0) {
    throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `recipe '${recipe.name}' asks for GPTQ, which needs calibration data: give --calib DIR`, { recipe: recipe.name });
  }
  const { calibration, evalSamples } = splitSamples(calibrationAll, evalGiven, inputs);

  const result = await compressModel({ modelBytes, source: options.model, recipe, calibration, evalSamples, progress: options.progress });
  const evalChoice = evalSpec(options.task, result);

  const usesFp16 = result.layers.some((l) => l.precision === 'fp16');
  const profiles = await loadBuiltinTargets();
  if (target && !profiles.some((p) => p.name === target.name)) profiles.push(target);
  const fits = profiles.map((p) => checkFit(p, { modelBytes: result.modelBytes.length, usesFp16 }));
  const precision = Object.fromEntries(result.layers.map((l) => [l.layer.name, l.precision]));

  const warnings: string[] = [];
  if (calibration.length === 0 && recipe.weights.bits === 4) {
    warnings.push('INT4 without --calib is round-to-nearest, which can destroy accuracy (PP-OCRv4 rec: −86 pt on degraded lines); give --calib DIR');
  }
  if (calibration.length === 0 && recipe.biasCorrection) warnings.push('bias correction needs --calib; it was skipped');
  const report = buildReport({
    name, version, source: path.basename(options.model), recipe, task: options.task, result, eval: evalChoice, targets: fits,
    calibrationSamples: calibration.length, timingsMs: { ...result.timingsMs }, warnings,
  });
  report.timingsMs.total = performance.now() - started;
  await writePackage(options.out, {
    name,
    version,
    modelBytes: result.modelBytes,
    inputs: result.inputs,
    outputs: result.outputs,
    evalCases: result.evalCases,
    eval: evalChoice,
    extraFiles: { 'report.json': `${JSON.stringify(report, null, 2)}\n`, 'report.md': reportMarkdown(report) },
    manifestExtras: {
      recipe: describeRecipe(recipe),
      targets: fits.filter((f) => f.fits).map((f) => f.target),
      ...(options.task ? { task: options.task } : {}),
      precision,
      sizes: { originalModelBytes: result.originalBytes, modelBytes: result.modelBytes.length },
    },
  }, options.force);
  return { report, out: options.out };
}
