/**
 * The compression pipeline, model bytes in, compressed model bytes and everything the package and report need
 * out: load → constants as initializers → opset 21 → fold BatchNorm → calibrate → quantize weights per layer
 * (rules, methods, mixed precision) → bias correction → activations → eval cases with reference outputs.
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import { biasCorrection } from '../quant/bias-correction.ts';
import { quantizeActivations, type ActivationReport } from './activations.ts';
import { addBiasDelta } from './apply-bias-correction.ts';
import { collectLayerStatistics, type LayerStatistics } from './calibrate.ts';
import { findQuantLayers, layerWeight, type QuantLayer } from './layers.ts';
import { allocateMixedPrecision, type MixedReport } from './mixed-precision.ts';
import {
  cloneModelProto, constantsToInitializers, decodeModelProto, encodeModelProto, NameAllocator, removeUnusedInitializers, type ModelProto,
} from './model-proto.ts';
import { foldBatchNorms } from './fold-batchnorm.ts';
import { upgradeOpset, type UpgradeResult } from './opset-upgrade.ts';
import { modelInputs, modelOutputs, OrtModel, withExtraOutputs, type ValueSpec } from './ort-runner.ts';
import { OutputErrorMeter, type OutputError } from './output-error.ts';
import type { Progress } from './progress.ts';
import { effectiveWeight, int8Rule, quantizeLayer, type LayerChoice } from './quantize-weights.ts';
import { withStorage, type Recipe } from './recipes.ts';
import { storeSideTensors, type StorageResult } from './storage.ts';
import { compactModel } from './compact-graph.ts';
import type { Sample } from './sample-folder.ts';
import { applyLayerFormat } from './weight-format.ts';

export interface CompressInput {
  modelBytes: Uint8Array;
  source: string;
  recipe: Recipe;
  calibration: Sample[];
  /** Inputs the eval set and the error report use; distinct from the calibration samples. */
  evalSamples: Sample[];
  progress: Progress;
}

export interface EvalCaseData {
  name: string;
  inputs: Record<string, Tensor>;
  /** onnxruntime-node's outputs of the compressed model: what the package promises. */
  outputs: Record<string, Tensor>;
}

export interface CompressResult {
  modelBytes: Uint8Array;
  /** The input model file, and the FP32 model after the lossless steps (opset upgrade, BN folding). */
  originalBytes: number;
  preparedBytes: number;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  layers: LayerChoice[];
  upgrade: UpgradeResult;
  foldedBatchNorms: number;
  biasCorrected: number;
  mixed: MixedReport | null;
  activations: ActivationReport | null;
  /** Which scales and biases were stored as float16 (recipe storage) and which stayed float32. */
  storage: StorageResult;
  evalCases: EvalCaseData[];
  /** Compressed vs FP32 on the eval inputs. */
  outputError: OutputError;
  timingsMs: Record<string, number>;
}

async function timed<T>(timings: Record<string, number>, step: string, action: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  try {
    return await action();
  } finally {
    timings[step] = (timings[step] ?? 0) + performance.now() - started;
  }
}

/** Ranks of the values old-style Softmax reads, from one onnxruntime run, so the upgrade keeps them single nodes. */
async function probeSoftmaxRanks(model: ModelProto, sample: Sample | undefined): Promise<Map<string, number>> {
  const names = (model.graph!.node ?? []).filter((n) => ['Softmax', 'LogSoftmax', 'Hardmax'].includes(n.opType ?? '')).map((n) => n.input![0]!);
  if (!sample || names.length === 0) return new Map();
  const session = await OrtModel.open(withExtraOutputs(model, names), 'opset-upgrade probe');
  try {
    const outputs = await session.run(sample.feeds, names);
    return new Map(names.map((n) => [n, outputs[n]!.dims.length]));
  } finally {
    await session.close();
  }
}

export async function compressModel(input: CompressInput): Promise<CompressResult> {
  const timings: Record<string, number> = {};
  const { calibration, progress } = input;
  const recipe = withStorage(input.recipe);
  const model = decodeModelProto(input.modelBytes, input.source);

  const { upgrade, folded } = await timed(timings, 'prepare', async () => {
    constantsToInitializers(model.graph!);
    const ranks = await probeSoftmaxRanks(model, calibration[0] ?? input.evalSamples[0]);
    const result = upgradeOpset(model, { ranks });
    const count = recipe.foldBatchNorm ? foldBatchNorms(model.graph!) : 0;
    removeUnusedInitializers(model.graph!);
    return { upgrade: result, folded: count };
  });
  const layers = findQuantLayers(model.graph!);
  const prepared = encodeModelProto(model);

  const needsStats = calibration.length > 0 && (recipe.weights.method !== 'rtn' || recipe.biasCorrection);
  const stats = needsStats
    ? await timed(timings, 'calibration', () => collectLayerStatistics(model, layers, calibration, progress))
    : new Map<string, LayerStatistics>();

  const weights = new Map(layers.map((l) => [l.name, layerWeight(model.graph!, l)]));
  let choices = await timed(timings, 'quantize-weights', () => baseChoices(layers, weights, recipe, stats, progress));

  let mixed: MixedReport | null = null;
  if (recipe.mixed) {
    mixed = await timed(timings, 'mixed-precision', () => allocateMixedPrecision({
      model, layers, weights, stats, recipe, step: recipe.mixed!, calibration, baseChoices: choices, progress,
      originalBytes: input.modelBytes.length,
    }));
    choices = mixed.choices;
  }

  const compressed = cloneModelProto(model);
  const names = new NameAllocator(compressed.graph!);
  const compressedLayers = findQuantLayers(compressed.graph!);
  const byName = new Map(compressedLayers.map((l) => [l.name, l]));
  let biasCorrected = 0;
  await timed(timings, 'write-weights', () => {
    for (const choice of choices) {
      const layer = byName.get(choice.layer.name)!;
      const stat = stats.get(layer.name);
      if (recipe.biasCorrection && stat && (choice.format.kind === 'dq' || choice.format.kind === 'matmulnbits')) {
        const layout = layer.kind === 'conv' ? 'conv' : 'matmul';
        const approximation = effectiveWeight(layer, choice.format.quantized, choice.format.inputScales);
        const delta = biasCorrection(weights.get(layer.name)!, approximation, layer.dims, stat.calib, layout, layer.weightName);
        addBiasDelta(compressed.graph!, layer, delta, names);
        biasCorrected++;
      }
      applyLayerFormat(compressed, layer, choice.format, names);
    }
  });

  let activations: ActivationReport | null = null;
  if (recipe.activations) {
    activations = await timed(timings, 'quantize-activations', () => quantizeActivations({
      model: compressed, fp32: model, layers: compressedLayers, choices, step: recipe.activations!, calibration, names, progress,
    }));
  }
  const quantizedLayers = choices.filter((c) => c.format.kind === 'dq' || c.format.kind === 'matmulnbits').map((c) => byName.get(c.layer.name)!);
  const storage = storeSideTensors(compressed.graph!, quantizedLayers, recipe.storage, names);
  compactModel(compressed, new Set(compressedLayers.map((l) => l.node.name ?? '')));
  const modelBytes = encodeModelProto(compressed);

  const { evalCases, outputError } = await timed(timings, 'eval-set', () => buildEvalCases(prepared, modelBytes, input.evalSamples, progress));
  return {
    modelBytes,
    originalBytes: input.modelBytes.length,
    preparedBytes: prepared.length,
    inputs: modelInputs(compressed),
    outputs: modelOutputs(compressed),
    layers: choices,
    upgrade,
    foldedBatchNorms: folded,
    biasCorrected,
    mixed,
    activations,
    storage,
    evalCases,
    outputError,
    timingsMs: timings,
  };
}

function baseChoices(layers: QuantLayer[], weights: Map<string, Float32Array>, recipe: Recipe,
  stats: Map<string, LayerStatistics>, progress: Progress): LayerChoice[] {
  const step = recipe.weights;
  const task = progress.start('quantize-weights', layers.length);
  const choices = layers.map((layer) => {
    const rule = step.bits === 4 ? int8Rule(layer, layers.length, step.int8Layers) : undefined;
    const bits = rule ? 8 : step.bits;
    const choice = quantizeLayer(layer, weights.get(layer.name)!, bits, step, stats.get(layer.name),
      rule ? `rule: ${rule} layer kept at 8 bits` : `recipe ${recipe.name}`);
    task.tick();
    return choice;
  });
  task.done();
  return choices;
}

async function buildEvalCases(fp32Bytes: Uint8Array, compressedBytes: Uint8Array, samples: readonly Sample[], progress: Progress):
  Promise<{ evalCases: EvalCaseData[]; outputError: OutputError }> {
  if (samples.length === 0) throw new EdgerunError('EDGERUN_ERR_COMPRESS', 'eval set: no eval inputs', { step: 'eval-set' });
  const fp32 = await OrtModel.open(fp32Bytes, 'eval-set (FP32)');
  const compressed = await OrtModel.open(compressedBytes, 'eval-set (compressed)');
  const meter = new OutputErrorMeter();
  const evalCases: EvalCaseData[] = [];
  try {
    const task = progress.start('eval-set', samples.length);
    for (const [index, sample] of samples.entries()) {
      const reference = await fp32.run(sample.feeds);
      const outputs = await compressed.run(sample.feeds);
      meter.add(reference, outputs);
      evalCases.push({ name: `case${index}`, inputs: sample.feeds, outputs });
      task.tick();
    }
    task.done();
  } finally {
    await fp32.close();
    await compressed.close();
  }
  return { evalCases, outputError: meter.result() };
}
