/**
 * Device target profiles (targets/*.json): memory and power budgets, the GPU features the class of device is
 * expected to have, the largest model it should get, and the recipe the selection guide recommends. `--target`
 * names a profile (or a path to a profile file); a package records every built-in target it fits.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { EdgerunError } from '../errors.ts';

/** The package's top-level targets/ folder, found above this module both from source and compiled under dist/. */
export const TARGETS_DIR = findTargetsDir(path.dirname(fileURLToPath(import.meta.url)));

function findTargetsDir(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'targets'))) return path.join(dir, 'targets');
    if (path.dirname(dir) === dir) return path.resolve(start, '../../targets');
  }
}

export interface TargetProfile {
  name: string;
  description: string;
  class: 'phone' | 'embedded' | 'edge-server';
  memoryBytes: number;
  /** Memory the model (weights + runtime buffers) may take on the device. */
  modelMemoryBudgetBytes: number;
  powerBudgetWatts: number;
  maxModelBytes: number;
  gpuFeatures: string[];
  recommendedRecipe: string;
  /** The selection guide's full recommendation; pruning and distillation are recorded, not performed. */
  guide: { quantization: string; pruning: 'none' | 'structured' | 'aggressive'; distillation: boolean; note: string };
}

const TARGET_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'description', 'class', 'memoryBytes', 'modelMemoryBudgetBytes', 'powerBudgetWatts', 'maxModelBytes', 'gpuFeatures', 'recommendedRecipe', 'guide'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', maxLength: 128 },
    description: { type: 'string' },
    class: { enum: ['phone', 'embedded', 'edge-server'] },
    memoryBytes: { type: 'integer', minimum: 1 },
    modelMemoryBudgetBytes: { type: 'integer', minimum: 1 },
    powerBudgetWatts: { type: 'number', exclusiveMinimum: 0 },
    maxModelBytes: { type: 'integer', minimum: 1 },
    gpuFeatures: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    recommendedRecipe: { type: 'string', minLength: 1 },
    guide: {
      type: 'object',
      additionalProperties: false,
      required: ['quantization', 'pruning', 'distillation', 'note'],
      properties: {
        quantization: { type: 'string' },
        pruning: { enum: ['none', 'structured', 'aggressive'] },
        distillation: { type: 'boolean' },
        note: { type: 'string' },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: true }).compile(TARGET_SCHEMA);

function targetError(profile: string, reason: string, field?: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_TARGET', `target '${profile}': ${reason}`, { target: profile, ...(field ? { field } : {}) });
}

function fieldOf(error: ErrorObject): string {
  const at = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (error.keyword === 'required') return [at, String(error.params.missingProperty)].filter(Boolean).join('.');
  if (error.keyword === 'additionalProperties') return [at, String(error.params.additionalProperty)].filter(Boolean).join('.');
  return at || '(root)';
}

export function parseTarget(text: string, profile: string): TargetProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw targetError(profile, `is not valid JSON (${(error as Error).message})`);
  }
  if (!validate(value)) {
    const error = validate.errors![0]!;
    const field = fieldOf(error);
    const reason = error.keyword === 'additionalProperties' ? 'is not a known field' : error.keyword === 'required' ? 'is required' : error.message ?? error.keyword;
    throw targetError(profile, `field '${field}' ${reason}`, field);
  }
  return value as unknown as TargetProfile;
}

export async function builtinTargetNames(): Promise<string[]> {
  const files = await fs.readdir(TARGETS_DIR).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** A built-in profile by name, or a profile file by path (anything with a '/' or ending in .json). */
export async function loadTarget(nameOrPath: string): Promise<TargetProfile> {
  const isPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  const file = isPath ? nameOrPath : path.join(TARGETS_DIR, `${nameOrPath}.json`);
  if (!isPath && !/^[a-z0-9][a-z0-9._-]*$/.test(nameOrPath)) throw targetError(nameOrPath, 'is not a valid profile name');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    const known = await builtinTargetNames();
    throw targetError(nameOrPath, isPath ? `cannot read ${file}` : `is not a known profile; built-in targets: ${known.join(', ')}`);
  }
  const profile = parseTarget(text, nameOrPath);
  if (!isPath && profile.name !== nameOrPath) throw targetError(nameOrPath, `field 'name' is '${profile.name}', not the file's name`, 'name');
  return profile;
}

export async function loadBuiltinTargets(): Promise<TargetProfile[]> {
  return Promise.all((await builtinTargetNames()).map((name) => loadTarget(name)));
}

export interface TargetFit {
  target: string;
  fits: boolean;
  /** Why it does not fit (size, memory), or preferred features the package would use that the class lacks. */
  notes: string[];
}

/**
 * Whether a package fits a target: its model file within maxModelBytes, and its weights plus the largest
 * activation set (when known) within the model memory budget. FP16 weights want shader-f16 (noted, not required:
 * the runtime widens them to f32 without it).
 */
export function checkFit(target: TargetProfile, pkg: { modelBytes: number; activationBytes?: number; usesFp16: boolean }): TargetFit {
  const notes: string[] = [];
  let fits = true;
  if (pkg.modelBytes > target.maxModelBytes) {
    fits = false;
    notes.push(`model ${pkg.modelBytes} bytes > maxModelBytes ${target.maxModelBytes}`);
  }
  const memory = pkg.modelBytes + (pkg.activationBytes ?? 0);
  if (memory > target.modelMemoryBudgetBytes) {
    fits = false;
    notes.push(`memory ${memory} bytes > modelMemoryBudgetBytes ${target.modelMemoryBudgetBytes}`);
  }
  if (pkg.usesFp16 && !target.gpuFeatures.includes('shader-f16')) notes.push('FP16 weights run widened to f32 (no shader-f16 expected)');
  return { target: target.name, fits, notes };
}
