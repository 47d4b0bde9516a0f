/**
 * Reads and validates a model package folder (docs/PACKAGE.md) or a bare `NAME.onnx`, the two things a models
 * folder or the store can serve. Everything a package claims is checked before an engine sees it; every
 * failure is EDGERUN_ERR_PACKAGE_INVALID naming the package and the file or manifest field.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TensorInfo } from '../engine/types.ts';
import { type EvalSet, loadEvalSet } from './eval-set.ts';
import { MANIFEST_FILE, manifestHash, packageError, type PackageManifest, parseManifest } from './manifest.ts';
import { readModelIo } from './model-io.ts';
import { checkPackageFile, resolvePackageFile } from './package-files.ts';
import { isValidModelName } from './versions.ts';

/** The version a bare `NAME.onnx` is served as. */
export const BARE_MODEL_VERSION = '0';

export interface ModelPackage {
  kind: 'package' | 'bare';
  name: string;
  version: string;
  /** The package folder (resolved), or the folder holding a bare model. */
  dir: string;
  /** Absolute path of the ONNX file an engine loads. */
  modelPath: string;
  /** Absent for a bare model. */
  manifest?: PackageManifest;
  /** sha256 of manifest.json: identifies the package's exact contents. */
  manifestSha256?: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Absent when the package has no eval set (and for bare models). */
  eval?: EvalSet;
}

export interface ReadPackageOptions {
  /** Hash every listed file (default true). Sizes, paths and the eval set are always checked. */
  verifyHashes?: boolean;
}

export interface ManifestRead {
  manifest: PackageManifest;
  bytes: Uint8Array;
  sha256: string;
  /** The package folder, resolved. */
  dir: string;
}

async function realFolder(dir: string): Promise<string> {
  let real: string;
  try {
    real = await fs.realpath(dir);
  } catch (error) {
    throw packageError(dir, `the package folder cannot be read (${(error as Error).message})`);
  }
  if (!(await fs.stat(real)).isDirectory()) throw packageError(dir, 'is not a folder');
  return real;
}

/** Reads and schema-checks manifest.json alone (no file checks): cheap enough for listing folders. */
export async function readManifest(dir: string): Promise<ManifestRead> {
  const real = await realFolder(dir);
  const manifestPath = await resolvePackageFile(real, MANIFEST_FILE, dir);
  const bytes = new Uint8Array(await fs.readFile(manifestPath));
  return { manifest: parseManifest(bytes, dir), bytes, sha256: manifestHash(bytes), dir: real };
}

export async function readPackage(dir: string, options: ReadPackageOptions = {}): Promise<ModelPackage> {
  const { manifest, sha256, dir: real } = await readManifest(dir);
  const listed = new Map<string, string>();
  for (const file of manifest.files) {
    listed.set(file.path, await checkPackageFile(real, file, dir, options.verifyHashes ?? true));
  }
  const modelPath = listed.get(manifest.model)!;
  const io = await readModelIo(modelPath, dir, manifest.model);
  const evalSet = manifest.eval ? await loadEvalSet(manifest.eval, io, listed, dir) : undefined;
  return {
    kind: 'package',
    name: manifest.name,
    version: manifest.version,
    dir: real,
    modelPath,
    manifest,
    manifestSha256: sha256,
    inputs: io.inputs,
    outputs: io.outputs,
    ...(evalSet ? { eval: evalSet } : {}),
  };
}

/** The model name a bare ONNX file is served as (`resnet.onnx` → `resnet`), or undefined when not servable. */
export function bareModelName(filePath: string): string | undefined {
  const base = path.basename(filePath);
  if (!base.endsWith('.onnx')) return undefined;
  const name = base.slice(0, -'.onnx'.length);
  return isValidModelName(name) ? name : undefined;
}

/** A bare `NAME.onnx`: served as model NAME, version "0", with no eval set. */
export async function readBareModel(filePath: string): Promise<ModelPackage> {
  const name = bareModelName(filePath);
  if (!name) {
    throw packageError(filePath, `a bare model file must be named NAME.onnx with NAME matching [A-Za-z0-9][A-Za-z0-9._-]*`,
      { file: path.basename(filePath) });
  }
  let real: string;
  try {
    real = await fs.realpath(filePath);
  } catch (error) {
    throw packageError(filePath, `cannot be read (${(error as Error).message})`, { file: path.basename(filePath) });
  }
  if (!(await fs.stat(real)).isFile()) throw packageError(filePath, 'is not a regular file', { file: path.basename(filePath) });
  const io = await readModelIo(real, filePath, path.basename(filePath));
  return {
    kind: 'bare', name, version: BARE_MODEL_VERSION, dir: path.dirname(real), modelPath: real, inputs: io.inputs, outputs: io.outputs,
  };
}
