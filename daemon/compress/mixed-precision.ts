/**
 * Mixed precision: per layer, INT4 / INT8 / FP16 candidates; the sensitivity of each quantized candidate measured
 * with onnxruntime-node on calibration samples; bits chosen (bit-allocation.ts) to meet the size or accuracy
 * budget; the chosen mix measured as a whole, and for an accuracy budget tightened and re-allocated when the
 * layers' errors combine worse than independence predicts.
 */
import { EdgerunError } from '../errors.ts';
import { allocateBits, type LayerOption } from './bit-allocation.ts';
import type { LayerStatistics } from './calibrate.ts';
import type { QuantLayer } from './layers.ts';
import { encodeModelProto, type ModelProto } from './model-proto.ts';
import type { Progress } from './progress.ts';
import { quantizeLayer, type LayerChoice } from './quantize-weights.ts';
import type { MixedStep, Recipe } from './recipes.ts';
import type { Sample } from './sample-folder.ts';
import { measureModelError, measureSensitivity, modelWithChoices, referenceOutputs, type LayerSensitivity } from './sensitivity.ts';
import { formatBytes } from './weight-format.ts';

/** Size budget when the recipe gives none: 1/5.5 of the FP32 file (the INT4 target is ≥ 5× smaller). */
export const DEFAULT_SIZE_RATIO = 1 / 5.5;
/** (layer, precision) pairs measured with onnxruntime at most; beyond, the H-based estimate ranks and fills in. */
const MAX_MEASURED = 200;
const ACCURACY_RETRIES = 3;
const SIZE_RETRIES = 4;

export interface MixedReport {
  choices: LayerChoice[];
  sensitivity: { layer: string; int4: LayerSensitivity; int8: LayerSensitivity }[];
  budget: { sizeBytes?: number; accuracy?: number };
  predictedError: number;
  measuredError: number;
  totalBytes: number;
  met: boolean;
  measuredPairs: number;
  /** Wall time of the onnxruntime sensitivity measurements (all pairs). */
  sensitivityMs: number;
}

export interface MixedInput {
  model: ModelProto;
  layers: QuantLayer[];
  weights: Map<string, Float32Array>;
  stats: Map<string, LayerStatistics>;
  recipe: Recipe;
  step: MixedStep;
  calibration: Sample[];
  baseChoices: LayerChoice[];
  progress: Progress;
  originalBytes: number;
}

export function resolveSizeBudget(budget: number | undefined, originalBytes: number): number | undefined {
  if (budget === undefined) return undefined;
  return budget <= 1 ? Math.floor(budget * originalBytes) : budget;
}

export async function allocateMixedPrecision(input: MixedInput): Promise<MixedReport> {
  const { layers, step, recipe } = input;
  if (input.calibration.length === 0) {
    throw new EdgerunError('EDGERUN_ERR_CALIBRATION', 'mixed precision measures layer sensitivity on calibration data: give --calib DIR', { recipe: recipe.name });
  }
  const samples = input.calibration.slice(0, step.samples);
  const task = input.progress.start('mixed: candidates', layers.length);
  const int4 = layers.map((layer, i) => {
    const base = input.baseChoices[i]!;
    const choice = base.precision === 'int4' ? base : quantizeLayer(layer, input.weights.get(layer.name)!, 4, recipe.weights, input.stats.get(layer.name), 'mixed');
    task.tick();
    return choice;
  });
  const int8 = layers.map((layer, i) => {
    const base = input.baseChoices[i]!;
    return base.precision === 'int8' ? base : quantizeLayer(layer, input.weights.get(layer.name)!, 8, recipe.weights, input.stats.get(layer.name), 'mixed');
  });
  task.done();
  const fp16 = layers.map((layer) => quantizeLayer(layer, input.weights.get(layer.name)!, 16, recipe.weights, undefined, 'mixed'));

  const reference = await referenceOutputs(input.model, samples);
  const sensitivityStarted = performance.now();
  const measured = await measureSensitivity({
    model: input.model, layers, candidates: [...int4, ...int8], samples, maxMeasured: MAX_MEASURED, progress: input.progress,
  }, reference);
  const sensitivityMs = performance.now() - sensitivityStarted;
  const sensitivity = layers.map((layer, i) => ({ layer: layer.name, int4: measured[i]!, int8: measured[layers.length + i]! }));

  const allFp32 = encodeModelProto(input.model).length;
  const fixedBytes = allFp32 - layers.reduce((sum, l) => sum + l.params * 4, 0);
  const sizeBudget = resolveSizeBudget(step.sizeBudget, input.originalBytes)
    ?? (step.accuracyBudget === undefined ? Math.floor(DEFAULT_SIZE_RATIO * input.originalBytes) : undefined);
  const optionsFor = (i: number): { option: LayerOption; choice: LayerChoice }[] => {
    const list: { option: LayerOption; choice: LayerChoice }[] = [];
    if (step.candidates.includes(4)) list.push({ option: { bits: 4, bytes: int4[i]!.bytes, error: sensitivity[i]!.int4.error }, choice: int4[i]! });
    if (step.candidates.includes(8)) list.push({ option: { bits: 8, bytes: int8[i]!.bytes, error: sensitivity[i]!.int8.error }, choice: int8[i]! });
    if (step.candidates.includes(16)) list.push({ option: { bits: 16, bytes: formatBytes({ kind: 'fp16' }, layers[i]!.params), error: 0 }, choice: fp16[i]! });
    return list;
  };
  const perLayer = layers.map((_, i) => optionsFor(i));

  const options = perLayer.map((l) => l.map((o) => o.option));
  // The layer options count weight bytes only; nodes, names and bias corrections add some. The allocation runs
  // against the budget minus what the last written model overshot, until the written model fits.
  const biasBytes = input.recipe.biasCorrection ? layers.reduce((sum, l) => sum + biasCorrectionBytes(input.model, l), 0) : 0;
  const allocate = (accuracyBudget: number | undefined, sizeCap: number | undefined) => {
    let cap = sizeCap;
    let allocation = allocateBits({ options, fixedBytes, sizeBudget: cap, accuracyBudget });
    let bytes = modelWithChoices(input.model, pick(perLayer, allocation.chosen));
    for (let retry = 0; sizeCap !== undefined && bytes.length + biasBytes > sizeCap && retry < SIZE_RETRIES; retry++) {
      cap = cap! - (bytes.length + biasBytes - sizeCap);
      allocation = allocateBits({ options, fixedBytes, sizeBudget: cap, accuracyBudget });
      bytes = modelWithChoices(input.model, pick(perLayer, allocation.chosen));
    }
    return { allocation: { ...allocation, totalBytes: bytes.length + biasBytes, met: allocation.met && (sizeCap === undefined || bytes.length + biasBytes <= sizeCap) }, bytes };
  };
  let accuracy = step.accuracyBudget;
  let { allocation: result, bytes } = allocate(accuracy, sizeBudget);
  let choices = pick(perLayer, result.chosen);
  let measuredError = await measureModelError(bytes, samples, reference, 'mixed precision check');
  for (let retry = 0; step.accuracyBudget !== undefined && measuredError > step.accuracyBudget && retry < ACCURACY_RETRIES; retry++) {
    accuracy = accuracy! * (step.accuracyBudget / measuredError) * 0.9;
    ({ allocation: result, bytes } = allocate(accuracy, sizeBudget));
    choices = pick(perLayer, result.chosen);
    measuredError = await measureModelError(bytes, samples, reference, 'mixed precision check');
  }
  const met = result.met && (step.accuracyBudget === undefined || measuredError <= step.accuracyBudget);
  return {
    choices: choices.map((c) => ({ ...c, reason: `mixed: ${c.precision} (sensitivity ${sensitivity[c.layer.index]![c.precision === 'int4' ? 'int4' : 'int8'].error.toExponential(2)})` })),
    sensitivity,
    budget: { sizeBytes: sizeBudget, accuracy: step.accuracyBudget },
    predictedError: result.combinedError,
    measuredError,
    totalBytes: result.totalBytes,
    met,
    measuredPairs: measured.filter((m) => m.source === 'measured').length,
    sensitivityMs,
  };
}

/** Bytes bias correction adds to a layer that has no bias to fold the delta into: a float32 bias and a node. */
function biasCorrectionBytes(model: ModelProto, layer: QuantLayer): number {
  const outputs = layer.kind === 'conv' ? layer.dims[0]! : layer.dims[1]!;
  if (layer.kind === 'conv-transpose') return 0;
  if ((layer.kind === 'conv' || layer.kind === 'gemm') && layer.node.input?.[2]) return 0;
  if (layer.kind === 'matmul' && (model.graph!.node ?? []).some((n) => n.opType === 'Add' && n.input?.includes(layer.node.output![0]!))) return 0;
  return outputs * 4 + 2 * (layer.name.length + 24) + 16;
}

function pick(perLayer: { option: LayerOption; choice: LayerChoice }[][], chosen: LayerOption[]): LayerChoice[] {
  return perLayer.map((list, i) => list.find((o) => o.option === chosen[i])!.choice);
}
