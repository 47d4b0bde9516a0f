/**
 * Layer sensitivity: the model's output error (relative L2 vs FP32, onnxruntime-node on calibration samples)
 * when only that one layer is quantized, at each candidate bit width. Building and loading one model per
 * (layer, bits) is the cost; `maxMeasured` bounds it by measuring only the layers the cheap H-based estimate
 * ranks most sensitive and using the estimate (scaled to the measured ones) for the rest.
 */
import type { Tensor } from '../graph/ir.ts';
import { findQuantLayers, type QuantLayer } from './layers.ts';
import { cloneModelProto, encodeModelProto, NameAllocator, type ModelProto } from './model-proto.ts';
import { OrtModel } from './ort-runner.ts';
import { OutputErrorMeter } from './output-error.ts';
import type { Progress } from './progress.ts';
import type { LayerChoice } from './quantize-weights.ts';
import type { Sample } from './sample-folder.ts';
import { applyLayerFormat } from './weight-format.ts';

export interface LayerSensitivity {
  layer: string;
  /** Relative output error with only this layer at the given precision. */
  error: number;
  /** 'measured' (onnxruntime) or 'estimated' (H-based, scaled). */
  source: 'measured' | 'estimated';
}

export interface SensitivityInput {
  model: ModelProto;
  layers: readonly QuantLayer[];
  /** Per layer, the quantized choice to measure (one list per candidate precision). */
  candidates: readonly LayerChoice[];
  samples: readonly Sample[];
  /** Measure at most this many (layer, precision) pairs; the rest are estimated. */
  maxMeasured: number;
  progress: Progress;
}

export async function referenceOutputs(model: ModelProto, samples: readonly Sample[]): Promise<Record<string, Tensor>[]> {
  const session = await OrtModel.open(encodeModelProto(model), 'sensitivity (FP32)');
  try {
    const outputs: Record<string, Tensor>[] = [];
    for (const sample of samples) outputs.push(await session.run(sample.feeds));
    return outputs;
  } finally {
    await session.close();
  }
}

export async function measureModelError(bytes: Uint8Array, samples: readonly Sample[], reference: readonly Record<string, Tensor>[], label: string): Promise<number> {
  const session = await OrtModel.open(bytes, label);
  const meter = new OutputErrorMeter();
  try {
    for (const [i, sample] of samples.entries()) meter.add(reference[i]!, await session.run(sample.feeds));
  } finally {
    await session.close();
  }
  return meter.result().relativeL2;
}

/** Model bytes with the given choices applied (layers not listed stay FP32). */
export function modelWithChoices(model: ModelProto, choices: readonly LayerChoice[]): Uint8Array {
  const copy = cloneModelProto(model);
  const names = new NameAllocator(copy.graph!);
  const layers = new Map(findQuantLayers(copy.graph!).map((l) => [l.name, l]));
  for (const choice of choices) applyLayerFormat(copy, layers.get(choice.layer.name)!, choice.format, names);
  return encodeModelProto(copy);
}

export async function measureSensitivity(input: SensitivityInput, reference: readonly Record<string, Tensor>[]): Promise<LayerSensitivity[]> {
  const { candidates, samples } = input;
  // Most sensitive first by the estimate; without an estimate, bigger layers first.
  const order = [...candidates].sort((a, b) => (b.estimatedError ?? b.layer.params) - (a.estimatedError ?? a.layer.params));
  const measured = order.slice(0, input.maxMeasured);
  const task = input.progress.start('sensitivity', measured.length);
  const results = new Map<LayerChoice, LayerSensitivity>();
  for (const choice of measured) {
    const bytes = modelWithChoices(input.model, [choice]);
    const error = await measureModelError(bytes, samples, reference, `sensitivity of ${choice.layer.name}`);
    results.set(choice, { layer: choice.layer.name, error, source: 'measured' });
    task.tick();
  }
  task.done();
  // Scale the H-based estimates of the unmeasured ones by the measured/estimated ratio of the measured ones.
  let ratioSum = 0;
  let ratioCount = 0;
  for (const [choice, s] of results) {
    if (choice.estimatedError && choice.estimatedError > 0) {
      ratioSum += s.error / Math.sqrt(choice.estimatedError);
      ratioCount++;
    }
  }
  const ratio = ratioCount > 0 ? ratioSum / ratioCount : 0;
  for (const choice of order.slice(input.maxMeasured)) {
    results.set(choice, { layer: choice.layer.name, error: Math.sqrt(choice.estimatedError ?? 0) * ratio, source: 'estimated' });
  }
  return candidates.map((c) => results.get(c)!);
}
