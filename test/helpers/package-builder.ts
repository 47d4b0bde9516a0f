/**
 * Writes model packages (docs/PACKAGE.md) for tests: a valid package from ONNX bytes (ModelBuilder.toBytes())
 * with an eval set whose reference outputs come from onnxruntime-node, and the means to break one on purpose
 * (tampered files, wrong reference outputs, edited manifests with or without fresh hashes).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { evalFilePath, tensorFileNames } from '../../daemon/package/eval-set.ts';
import { MANIFEST_FILE, PACKAGE_FORMAT, type EvalMetric, type PackageManifest } from '../../daemon/package/manifest.ts';
import { modelIoFromBytes } from '../../daemon/package/model-io.ts';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { encodeNpy } from '../../daemon/util/npy.ts';

export type Feeds = Record<string, Tensor>;

export interface PackageSpec {
  name: string;
  version: string;
  /** ONNX bytes; written as model.onnx. */
  model: Uint8Array;
  /** Inputs of each eval case (cases are named case0, case1, …). Without them the package has no eval set. */
  evalInputs?: Feeds[];
  /** Reference outputs per case; computed with onnxruntime-node from `model` when absent. */
  referenceOutputs?: Feeds[];
  metric?: EvalMetric;
  tolerance?: number;
  threshold?: number;
  /** More files (relative path → bytes), listed in the manifest. */
  extraFiles?: Record<string, Uint8Array>;
  /** Last edits to the manifest before it is written (for deliberately broken packages). */
  editManifest?: (manifest: PackageManifest) => void;
}

export interface WrittenPackage {
  dir: string;
  manifest: PackageManifest;
}

function toOrt(tensor: Tensor): ort.Tensor {
  switch (tensor.dtype) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(tensor.data), tensor.dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(tensor.data, (v) => BigInt(v))), tensor.dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(tensor.data), tensor.dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(tensor.data), tensor.dims);
    default: throw new Error(`package-builder: dtype ${tensor.dtype} is not supported`);
  }
}

function fromOrt(value: ort.Tensor): Tensor {
  const dims = [...value.dims];
  switch (value.type) {
    case 'float32': return { dtype: 'float32', dims, data: Float32Array.from(value.data as Float32Array) };
    case 'int32': return { dtype: 'int32', dims, data: Int32Array.from(value.data as Int32Array) };
    case 'int64': return { dtype: 'int64', dims, data: Int32Array.from(value.data as BigInt64Array, (v) => Number(v)) };
    case 'bool': return { dtype: 'bool', dims, data: Int32Array.from(value.data as Uint8Array) };
    default: throw new Error(`package-builder: output type ${value.type} is not supported`);
  }
}

/** Runs ONNX bytes on onnxruntime-node (the oracle). */
export async function runOrt(model: Uint8Array, feeds: Feeds): Promise<Feeds> {
  const session = await ort.InferenceSession.create(model);
  try {
    const results = await session.run(Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, toOrt(t)])));
    return Object.fromEntries(Object.entries(results).map(([name, value]) => [name, fromOrt(value)]));
  } finally {
    await session.release();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function writeListed(dir: string, relative: string, bytes: Uint8Array): Promise<void> {
  const target = path.join(dir, ...relative.split('/'));
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.writeFile(target, bytes);
}

/** Writes a package folder at `dir` (created) and returns its manifest. */
export async function writePackage(dir: string, spec: PackageSpec): Promise<WrittenPackage> {
  await fs.mkdir(dir, { recursive: true });
  const files = new Map<string, Uint8Array>([['model.onnx', spec.model]]);
  let evalSpec: PackageManifest['eval'];
  if (spec.evalInputs) {
    const io = modelIoFromBytes(spec.model, dir, 'model.onnx');
    const inputFiles = tensorFileNames(io.inputs.map((i) => i.name));
    const outputFiles = tensorFileNames(io.outputs.map((o) => o.name));
    const outputDtypes = new Map<string, DType>(io.outputs.map((o) => [o.name, o.dtype]));
    const cases: string[] = [];
    for (const [index, inputs] of spec.evalInputs.entries()) {
      const caseName = `case${index}`;
      cases.push(caseName);
      const outputs = spec.referenceOutputs?.[index] ?? await runOrt(spec.model, inputs);
      for (const [name, tensor] of Object.entries(inputs)) {
        files.set(evalFilePath(caseName, 'inputs', inputFiles.get(name) ?? `${name}.npy`), encodeNpy(tensor));
      }
      for (const [name, tensor] of Object.entries(outputs)) {
        files.set(evalFilePath(caseName, 'outputs', outputFiles.get(name) ?? `${name}.npy`), encodeNpy(tensor, outputDtypes.get(name)));
      }
    }
    evalSpec = {
      cases,
      metric: spec.metric ?? 'allclose',
      ...(spec.metric !== 'argmax' ? { tolerance: spec.tolerance ?? 1e-4 } : {}),
      threshold: spec.threshold ?? 0.99,
    };
  }
  for (const [relative, bytes] of Object.entries(spec.extraFiles ?? {})) files.set(relative, bytes);
  for (const [relative, bytes] of files) await writeListed(dir, relative, bytes);
  const manifest: PackageManifest = {
    format: PACKAGE_FORMAT,
    name: spec.name,
    version: spec.version,
    createdAt: new Date().toISOString(),
    model: 'model.onnx',
    files: [...files].map(([relative, bytes]) => ({ path: relative, sha256: sha256(bytes), bytes: bytes.length })),
    recipe: { kind: 'test' },
    ...(evalSpec ? { eval: evalSpec } : {}),
  };
  spec.editManifest?.(manifest);
  await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return { dir, manifest };
}

export async function readManifestJson(dir: string): Promise<PackageManifest> {
  return JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as PackageManifest;
}

/** Rewrites manifest.json after `edit`; with `rehash` every listed file's size and sha256 are recomputed first. */
export async function rewriteManifest(dir: string, edit: (manifest: PackageManifest) => void, options: { rehash?: boolean } = {}): Promise<PackageManifest> {
  const manifest = await readManifestJson(dir);
  if (options.rehash) {
    for (const file of manifest.files) {
      const bytes = await fs.readFile(path.join(dir, ...file.path.split('/')));
      file.sha256 = sha256(bytes);
      file.bytes = bytes.length;
    }
  }
  edit(manifest);
  await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return manifest;
}

/** Overwrites a listed file's bytes; with `rehash` the manifest is updated so the package stays hash-consistent. */
export async function replaceFile(dir: string, relative: string, bytes: Uint8Array, options: { rehash?: boolean } = {}): Promise<void> {
  await writeListed(dir, relative, bytes);
  if (options.rehash) await rewriteManifest(dir, () => undefined, { rehash: true });
}
