/**
 * Compression recipes: what happens to a model, as data. A recipe is a list of steps (a recipe file composes
 * them, recipe-file.ts); the pipeline always runs them in the fixed order below, whatever order a file lists
 * them in, because each step needs the previous one's result:
 *   fold-batchnorm → quantize-weights → mixed-precision → bias-correction → quantize-activations.
 */
import { EdgerunError } from '../errors.ts';

export type WeightMethod = 'auto' | 'rtn' | 'gptq';
export type LayerRule = 'depthwise' | 'first' | 'last';
export type Observer = 'minmax' | 'percentile' | 'entropy';

export interface WeightStep {
  /** 16 = float16 weights (weight-only); 8 = per-channel; 4 = blocks of `group` along the input features. */
  bits: 4 | 8 | 16;
  scheme: 'symmetric' | 'asymmetric';
  group: 32 | 64 | 128;
  /** auto: GPTQ when calibration data is given (kept only where it beats round-to-nearest), else RTN. */
  method: WeightMethod;
  /** 'matmulnbits': 4-bit MatMul weights as com.microsoft MatMulNBits instead of DequantizeLinear. */
  format: 'dq' | 'matmulnbits';
  /** Layers kept at 8 bits when `bits` is 4. */
  int8Layers: LayerRule[];
  /** Set from the recipe's storage (withStorage): the precision quantization rounds scales to. */
  scaleFormat?: StoredFloat;
}

export type StoredFloat = 'float32' | 'float16';

/**
 * How the quantized layers' float side tensors are stored. float16 halves them (a Cast to float32 follows each):
 * scales are rounded to float16 before quantizing, so the stored scale is exact; a tensor whose values float16
 * cannot hold (out of range, or a bias that would lose more than storage.ts's tolerance) stays float32.
 */
export interface StorageStep {
  scales: StoredFloat;
  biases: StoredFloat;
}

export interface MixedStep {
  candidates: (4 | 8 | 16)[];
  /** Bytes (> 1) or a fraction of the FP32 weight bytes (≤ 1). */
  sizeBudget?: number;
  /** Max relative output error vs FP32 on the calibration samples. */
  accuracyBudget?: number;
  /** Calibration samples the sensitivity runs use. */
  samples: number;
}

export interface ActivationStep {
  mode: 'static' | 'dynamic';
  observer: Observer;
  /** For the percentile observer. */
  percentile: number;
}

export interface Recipe {
  name: string;
  foldBatchNorm: boolean;
  weights: WeightStep;
  mixed: MixedStep | null;
  biasCorrection: boolean;
  activations: ActivationStep | null;
  storage: StorageStep;
}

const FLOAT32_STORAGE: StorageStep = { scales: 'float32', biases: 'float32' };
const FLOAT16_STORAGE: StorageStep = { scales: 'float16', biases: 'float16' };

/** The weight step as quantization runs it: scales rounded to the precision they are stored in. */
export function withStorage(r: Recipe): Recipe {
  return { ...r, weights: { ...r.weights, scaleFormat: r.storage.scales } };
}

const INT8: WeightStep = { bits: 8, scheme: 'symmetric', group: 32, method: 'auto', format: 'dq', int8Layers: [] };
const INT4: WeightStep = { bits: 4, scheme: 'symmetric', group: 64, method: 'auto', format: 'dq', int8Layers: ['depthwise', 'first', 'last'] };

function recipe(name: string, weights: WeightStep, extra: Partial<Recipe> = {}): Recipe {
  return { name, foldBatchNorm: true, weights, mixed: null, biasCorrection: false, activations: null, storage: FLOAT32_STORAGE, ...extra };
}

export const BUILTIN_RECIPES: Readonly<Record<string, Recipe>> = {
  fp16: recipe('fp16', { ...INT8, bits: 16, method: 'rtn' }),
  int8: recipe('int8', INT8, { biasCorrection: true, storage: FLOAT16_STORAGE }),
  'int8-rtn': recipe('int8-rtn', { ...INT8, method: 'rtn' }, { storage: FLOAT16_STORAGE }),
  int4: recipe('int4', INT4, { biasCorrection: true, storage: FLOAT16_STORAGE }),
  'int4-rtn': recipe('int4-rtn', { ...INT4, method: 'rtn' }, { storage: FLOAT16_STORAGE }),
  mixed: recipe('mixed', INT4, { mixed: { candidates: [4, 8, 16], samples: 4 }, biasCorrection: true, storage: FLOAT16_STORAGE }),
  'w8a8-static': recipe('w8a8-static', INT8, { biasCorrection: true, activations: { mode: 'static', observer: 'percentile', percentile: 99.99 } }),
  'w8a8-dynamic': recipe('w8a8-dynamic', INT8, { biasCorrection: true, activations: { mode: 'dynamic', observer: 'minmax', percentile: 100 } }),
};

export function builtinRecipe(name: string): Recipe {
  const found = BUILTIN_RECIPES[name];
  if (!found) {
    throw new EdgerunError('EDGERUN_ERR_RECIPE', `unknown recipe '${name}'; built-in recipes: ${Object.keys(BUILTIN_RECIPES).join(', ')} (or give a recipe file)`,
      { recipe: name });
  }
  return structuredClone(found);
}

function weightStepFields({ int8Layers, scaleFormat: _, ...rest }: WeightStep): Record<string, unknown> {
  return { ...rest, 'int8-layers': int8Layers };
}

/** What the manifest records as `recipe`: the recipe as run, in the recipe-file vocabulary. */
export function describeRecipe(r: Recipe): Record<string, unknown> {
  return {
    name: r.name,
    steps: [
      { 'fold-batchnorm': r.foldBatchNorm ? {} : { enabled: false } },
      { 'quantize-weights': weightStepFields(r.weights) },
      ...(r.mixed ? [{ 'mixed-precision': { candidates: r.mixed.candidates, 'size-budget': r.mixed.sizeBudget, 'accuracy-budget': r.mixed.accuracyBudget, samples: r.mixed.samples } }] : []),
      ...(r.biasCorrection ? [{ 'bias-correction': {} }] : []),
      ...(r.activations ? [{ 'quantize-activations': r.activations }] : []),
      { storage: r.storage },
    ],
  };
}
