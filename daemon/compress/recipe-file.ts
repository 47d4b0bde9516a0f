/**
 * Recipe files (YAML or JSON) compose the pipeline's steps with parameters:
 *
 *   name: ocr-int4
 *   steps:
 *     - quantize-weights: { bits: 4, group: 64, method: auto, int8-layers: [depthwise, first, last] }
 *     - bias-correction: {}
 *     - mixed-precision: { candidates: [4, 8, 16], size-budget: 0.18 }
 *     - quantize-activations: { mode: static, observer: entropy }
 *
 * Validated with ajv: an unknown step or field, or a bad value, is EDGERUN_ERR_RECIPE naming the file, the step
 * and the field. Steps may be listed in any order; they run in the order recipes.ts fixes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { EdgerunError } from '../errors.ts';
import type { Recipe, StoredFloat, WeightStep } from './recipes.ts';

const STEP_SCHEMAS = {
  'fold-batchnorm': { type: 'object', additionalProperties: false, properties: { enabled: { type: 'boolean' } } },
  'quantize-weights': {
    type: 'object',
    additionalProperties: false,
    required: ['bits'],
    properties: {
      bits: { enum: [4, 8, 16] },
      scheme: { enum: ['symmetric', 'asymmetric'] },
      group: { enum: [32, 64, 128] },
      method: { enum: ['auto', 'rtn', 'gptq'] },
      format: { enum: ['dq', 'matmulnbits'] },
      'int8-layers': { type: 'array', uniqueItems: true, items: { enum: ['depthwise', 'first', 'last'] } },
    },
  },
  'bias-correction': { type: 'object', additionalProperties: false, properties: { enabled: { type: 'boolean' } } },
  storage: {
    type: 'object',
    additionalProperties: false,
    properties: { scales: { enum: ['float32', 'float16'] }, biases: { enum: ['float32', 'float16'] } },
  },
  'mixed-precision': {
    type: 'object',
    additionalProperties: false,
    properties: {
      candidates: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [4, 8, 16] } },
      'size-budget': { type: 'number', exclusiveMinimum: 0 },
      'accuracy-budget': { type: 'number', exclusiveMinimum: 0 },
      samples: { type: 'integer', minimum: 1, maximum: 64 },
    },
  },
  'quantize-activations': {
    type: 'object',
    additionalProperties: false,
    required: ['mode'],
    properties: {
      mode: { enum: ['static', 'dynamic'] },
      observer: { enum: ['minmax', 'percentile', 'entropy'] },
      percentile: { type: 'number', exclusiveMinimum: 50, maximum: 100 },
    },
  },
} as const;

type StepName = keyof typeof STEP_SCHEMAS;

const FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['steps'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 64 },
    steps: { type: 'array', minItems: 1, items: { type: 'object', minProperties: 1, maxProperties: 1 } },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validateFile = ajv.compile(FILE_SCHEMA);
const validateStep = Object.fromEntries(Object.entries(STEP_SCHEMAS).map(([name, schema]) => [name, ajv.compile(schema)])) as
  Record<StepName, ReturnType<typeof ajv.compile>>;

function recipeError(file: string, reason: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_RECIPE', `recipe ${file}: ${reason}`, { recipe: file, ...context });
}

function describe(error: ErrorObject, where: string): { field: string; reason: string } {
  const at = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const join = (extra: string): string => [where, at, extra].filter(Boolean).join('.');
  switch (error.keyword) {
    case 'additionalProperties': return { field: join(String(error.params.additionalProperty)), reason: 'is not a known field' };
    case 'required': return { field: join(String(error.params.missingProperty)), reason: 'is required' };
    case 'enum': return { field: join(''), reason: `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default: return { field: join(''), reason: error.message ?? error.keyword };
  }
}

export async function loadRecipeFile(file: string): Promise<Recipe> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw recipeError(file, `cannot be read (${(error as Error).message})`);
  }
  return parseRecipe(text, file);
}

export function parseRecipe(text: string, file: string): Recipe {
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw recipeError(file, `is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'} (${(error as Error).message})`);
  }
  if (!validateFile(value)) {
    const { field, reason } = describe(validateFile.errors![0]!, '');
    throw recipeError(file, `'${field || '(top level)'}' ${reason}`, { field });
  }
  const doc = value as { name?: string; steps: Record<string, Record<string, unknown>>[] };
  const recipe: Recipe = {
    name: doc.name ?? path.basename(file).replace(/\.(ya?ml|json)$/i, ''),
    foldBatchNorm: true,
    weights: { bits: 8, scheme: 'symmetric', group: 32, method: 'auto', format: 'dq', int8Layers: [] },
    mixed: null,
    biasCorrection: false,
    activations: null,
    storage: { scales: 'float32', biases: 'float32' },
  };
  const seen = new Set<string>();
  doc.steps.forEach((entry, index) => {
    const [name, params] = Object.entries(entry)[0]!;
    const where = `steps[${index}].${name}`;
    if (!(name in STEP_SCHEMAS)) {
      throw recipeError(file, `unknown step '${name}' at steps[${index}]; steps: ${Object.keys(STEP_SCHEMAS).join(', ')}`, { step: name });
    }
    if (seen.has(name)) throw recipeError(file, `step '${name}' is given twice`, { step: name });
    seen.add(name);
    const p = params ?? {};
    const check = validateStep[name as StepName];
    if (!check(p)) {
      const { field, reason } = describe(check.errors![0]!, where);
      throw recipeError(file, `'${field}' ${reason}`, { step: name, field });
    }
    applyStep(recipe, name as StepName, p as Record<string, unknown>);
  });
  if (recipe.mixed && recipe.weights.bits === 16) throw recipeError(file, "'mixed-precision' needs 'quantize-weights' bits 4 or 8", { step: 'mixed-precision' });
  if (recipe.activations && recipe.weights.bits !== 8) {
    throw recipeError(file, "'quantize-activations' needs 'quantize-weights' bits 8 (W8A8)", { step: 'quantize-activations' });
  }
  return recipe;
}

function applyStep(recipe: Recipe, name: StepName, p: Record<string, unknown>): void {
  switch (name) {
    case 'fold-batchnorm': recipe.foldBatchNorm = (p.enabled as boolean | undefined) ?? true; return;
    case 'bias-correction': recipe.biasCorrection = (p.enabled as boolean | undefined) ?? true; return;
    case 'storage':
      recipe.storage = { scales: (p.scales as StoredFloat | undefined) ?? 'float16', biases: (p.biases as StoredFloat | undefined) ?? 'float16' };
      return;
    case 'quantize-weights': {
      const bits = p.bits as WeightStep['bits'];
      recipe.weights = {
        bits,
        scheme: (p.scheme as WeightStep['scheme'] | undefined) ?? 'symmetric',
        group: (p.group as WeightStep['group'] | undefined) ?? 32,
        method: (p.method as WeightStep['method'] | undefined) ?? 'auto',
        format: (p.format as WeightStep['format'] | undefined) ?? 'dq',
        int8Layers: (p['int8-layers'] as WeightStep['int8Layers'] | undefined) ?? (bits === 4 ? ['depthwise', 'first', 'last'] : []),
      };
      return;
    }
    case 'mixed-precision':
      recipe.mixed = {
        candidates: (p.candidates as (4 | 8 | 16)[] | undefined) ?? [4, 8, 16],
        sizeBudget: p['size-budget'] as number | undefined,
        accuracyBudget: p['accuracy-budget'] as number | undefined,
        samples: (p.samples as number | undefined) ?? 4,
      };
      return;
    case 'quantize-activations':
      recipe.activations = {
        mode: p.mode as 'static' | 'dynamic',
        observer: (p.observer as 'minmax' | 'percentile' | 'entropy' | undefined) ?? 'percentile',
        percentile: (p.percentile as number | undefined) ?? 99.99,
      };
  }
}
