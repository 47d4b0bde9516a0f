/**
 * manifest.json of a model package (format "edgerun-package/1", documented in docs/PACKAGE.md): the JSON schema,
 * checked with ajv, plus the rules a schema cannot say (name and version syntax, dates, unique paths).
 */
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { EdgerunError } from '../errors.ts';
import { isValidModelName, isValidVersion, MAX_NAME_LENGTH, MAX_VERSION_LENGTH } from './versions.ts';

export const PACKAGE_FORMAT = 'edgerun-package/1';
export const MANIFEST_FILE = 'manifest.json';
/** Caps on what a manifest may ask the reader to do. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_PACKAGE_FILES = 100_000;
export const MAX_EVAL_CASES = 10_000;

export interface ManifestFile {
  /** Relative to the package folder, '/'-separated. */
  path: string;
  sha256: string;
  bytes: number;
}

export type EvalMetric = 'argmax' | 'allclose';

export interface ManifestEval {
  cases: string[];
  metric: EvalMetric;
  /** allclose: the absolute tolerance (default DEFAULT_ALLCLOSE_TOLERANCE). */
  tolerance?: number;
  /** Fraction of agreeing outputs required, in [0, 1]. */
  threshold: number;
}

export interface PackageManifest {
  format: typeof PACKAGE_FORMAT;
  name: string;
  version: string;
  createdAt: string;
  model: string;
  files: ManifestFile[];
  recipe?: Record<string, unknown>;
  targets?: string[];
  eval?: ManifestEval;
  /** What the model does, for scorers that need to know (e.g. "ppocr-rec" for `bench --compare`). Optional. */
  task?: string;
  /** Precision of each compressed layer (node name → "int4" | "int8" | "fp16" | "fp32"), as the compressor chose. Optional. */
  precision?: Record<string, string>;
  /** Sizes in bytes: the original FP32 model file and the package's model file. Optional. */
  sizes?: { originalModelBytes: number; modelBytes: number };
}

export const DEFAULT_ALLCLOSE_TOLERANCE = 1e-4;

export const MANIFEST_SCHEMA = {
  $id: 'https://edgerun.dev/schemas/edgerun-package-1.json',
  type: 'object',
  required: ['format', 'name', 'version', 'createdAt', 'model', 'files'],
  // Producers may add fields (a report, provenance); readers ignore what they do not know.
  additionalProperties: true,
  properties: {
    format: { const: PACKAGE_FORMAT },
    name: { type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH },
    version: { type: 'string', minLength: 1, maxLength: MAX_VERSION_LENGTH },
    createdAt: { type: 'string', minLength: 1, maxLength: 64 },
    model: { type: 'string', minLength: 1, maxLength: 1024 },
    files: {
      type: 'array',
      maxItems: MAX_PACKAGE_FILES,
      items: {
        type: 'object',
        required: ['path', 'sha256', 'bytes'],
        additionalProperties: false,
        properties: {
          path: { type: 'string', minLength: 1, maxLength: 1024 },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          bytes: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        },
      },
    },
    recipe: { type: 'object' },
    targets: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 256 }, maxItems: 1024 },
    task: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 64 },
    precision: { type: 'object', additionalProperties: { type: 'string', maxLength: 16 } },
    sizes: {
      type: 'object',
      required: ['originalModelBytes', 'modelBytes'],
      properties: {
        originalModelBytes: { type: 'integer', minimum: 0 },
        modelBytes: { type: 'integer', minimum: 0 },
      },
    },
    eval: {
      type: 'object',
      required: ['cases', 'metric', 'threshold'],
      additionalProperties: false,
      properties: {
        cases: {
          type: 'array',
          minItems: 1,
          maxItems: MAX_EVAL_CASES,
          items: { type: 'string', pattern: '^[A-Za-z0-9_-][A-Za-z0-9._-]*$', maxLength: 128 },
        },
        metric: { enum: ['argmax', 'allclose'] },
        tolerance: { type: 'number', minimum: 0 },
        threshold: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validateSchema = ajv.compile(MANIFEST_SCHEMA);

export function packageError(source: string, reason: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${source}: ${reason}`, { package: source, ...context });
}

function describeSchemaError(error: ErrorObject): { field: string; reason: string } {
  const field = `manifest${error.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
  switch (error.keyword) {
    case 'required': return { field: `${field}.${String(error.params.missingProperty)}`, reason: 'is required' };
    case 'additionalProperties': return { field: `${field}.${String(error.params.additionalProperty)}`, reason: 'is not an allowed field' };
    case 'const': return { field, reason: `must be "${String(error.params.allowedValue)}"` };
    case 'enum': return { field, reason: `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default: return { field, reason: error.message ?? error.keyword };
  }
}

/** The hash that identifies a package's exact contents: sha256 of its manifest bytes (which hash every file). */
export function manifestHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses and checks manifest bytes; `source` (the package folder) is named in every error. */
export function parseManifest(bytes: Uint8Array, source: string): PackageManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw packageError(source, `${MANIFEST_FILE} is ${bytes.length} bytes, over the cap of ${MAX_MANIFEST_BYTES}`, { file: MANIFEST_FILE });
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw packageError(source, `${MANIFEST_FILE} is not valid UTF-8 JSON (${(error as Error).message})`, { file: MANIFEST_FILE });
  }
  if (!validateSchema(value)) {
    const { field, reason } = describeSchemaError(validateSchema.errors![0]);
    throw packageError(source, `${MANIFEST_FILE}: ${field} ${reason}`, { file: MANIFEST_FILE, field });
  }
  const manifest = value as unknown as PackageManifest;
  if (!isValidModelName(manifest.name)) {
    throw packageError(source, `${MANIFEST_FILE}: manifest.name '${manifest.name}' must match [A-Za-z0-9][A-Za-z0-9._-]*`,
      { file: MANIFEST_FILE, field: 'manifest.name' });
  }
  if (!isValidVersion(manifest.version)) {
    throw packageError(source, `${MANIFEST_FILE}: manifest.version '${manifest.version}' must be dotted numeric (e.g. "3" or "1.4.2")`,
      { file: MANIFEST_FILE, field: 'manifest.version' });
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(manifest.createdAt)
    || Number.isNaN(Date.parse(manifest.createdAt))) {
    throw packageError(source, `${MANIFEST_FILE}: manifest.createdAt '${manifest.createdAt}' is not an ISO 8601 date-time`,
      { file: MANIFEST_FILE, field: 'manifest.createdAt' });
  }
  const seen = new Set<string>();
  for (const [index, file] of manifest.files.entries()) {
    const field = `manifest.files[${index}].path`;
    const problem = relativePathProblem(file.path);
    if (problem) throw packageError(source, `${MANIFEST_FILE}: ${field} '${file.path}' ${problem}`, { file: MANIFEST_FILE, field });
    if (file.path === MANIFEST_FILE) {
      throw packageError(source, `${MANIFEST_FILE}: ${field} lists ${MANIFEST_FILE} itself, which cannot hash itself`, { file: MANIFEST_FILE, field });
    }
    // Case-insensitive so a package installs the same way on case-insensitive filesystems.
    const key = file.path.toLowerCase();
    if (seen.has(key)) throw packageError(source, `${MANIFEST_FILE}: ${field} '${file.path}' is listed twice`, { file: MANIFEST_FILE, field });
    seen.add(key);
  }
  if (!seen.has(manifest.model.toLowerCase()) || !manifest.files.some((f) => f.path === manifest.model)) {
    throw packageError(source, `${MANIFEST_FILE}: manifest.model '${manifest.model}' is not listed in manifest.files`,
      { file: MANIFEST_FILE, field: 'manifest.model' });
  }
  if (manifest.eval) {
    const cases = new Set<string>();
    for (const [index, name] of manifest.eval.cases.entries()) {
      if (cases.has(name)) {
        throw packageError(source, `${MANIFEST_FILE}: manifest.eval.cases[${index}] '${name}' is listed twice`,
          { file: MANIFEST_FILE, field: `manifest.eval.cases[${index}]` });
      }
      cases.add(name);
    }
    if (manifest.eval.tolerance !== undefined && manifest.eval.metric !== 'allclose') {
      throw packageError(source, `${MANIFEST_FILE}: manifest.eval.tolerance applies only to the allclose metric`,
        { file: MANIFEST_FILE, field: 'manifest.eval.tolerance' });
    }
  }
  return manifest;
}

/**
 * Why a manifest path is not a safe relative path inside the package, or undefined when it is: '/'-separated,
 * no empty, '.' or '..' segments, not absolute, no backslashes, drive letters or control characters.
 */
export function relativePathProblem(filePath: string): string | undefined {
  if (filePath.startsWith('/')) return 'is absolute';
  if (/^[A-Za-z]:/.test(filePath)) return 'starts with a drive letter';
  if (filePath.includes('\\')) return 'contains a backslash (use /)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(filePath)) return 'contains a control character';
  const segments = filePath.split('/');
  if (segments.includes('..')) return "escapes the package folder ('..')";
  if (segments.some((s) => s === '' || s === '.')) return "has an empty or '.' segment";
  return undefined;
}
