/**
 * Writes a model package (docs/PACKAGE.md) atomically: every file goes into a temp folder next to `--out`
 * (fsynced), manifest.json last, then one rename puts the package in place. An existing non-empty `--out` is
 * refused unless `force`; with `force` it is swapped out and removed only after the new package is in place.
 * On any failure the temp folder is removed: nothing half-written is ever visible at `--out`.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import type { DType, Tensor } from '../graph/ir.ts';
import { evalFilePath, tensorFileNames } from '../package/eval-set.ts';
import { MANIFEST_FILE, PACKAGE_FORMAT, type ManifestEval, type ManifestFile, type PackageManifest } from '../package/manifest.ts';
import { encodeNpy } from '../util/npy.ts';

export const MODEL_FILE = 'model.onnx';

export interface PackageContents {
  name: string;
  version: string;
  modelBytes: Uint8Array;
  inputs: { name: string; dtype: DType }[];
  outputs: { name: string; dtype: DType }[];
  evalCases: { name: string; inputs: Record<string, Tensor>; outputs: Record<string, Tensor> }[];
  eval: Omit<ManifestEval, 'cases'>;
  /** Extra files (report.json, report.md): path → contents. */
  extraFiles: Record<string, string | Uint8Array>;
  /** Manifest fields beyond the required ones (recipe, targets, task, precision, sizes, ...). */
  manifestExtras: Partial<PackageManifest> & Record<string, unknown>;
}

function ioError(target: string, reason: string, cause?: unknown): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_IO', `${target}: ${reason}`, { file: target }, cause ? { cause } : undefined);
}

/** Fails early (before any work) when `out` exists and is not an empty folder, unless `force`. */
export async function checkOutFolder(out: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    const stat = await fs.stat(out);
    if (!stat.isDirectory()) {
      if (force) return;
      throw ioError(out, 'exists and is not a folder; pass --force to replace it');
    }
    entries = await fs.readdir(out);
  } catch (error) {
    if (isEdgerunError(error)) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(out, `cannot be inspected (${(error as Error).message})`, error);
  }
  if (entries.length > 0 && !force) throw ioError(out, 'exists and is not empty; pass --force to replace it');
}

async function writeSynced(file: string, data: string | Uint8Array): Promise<Omit<ManifestFile, 'path'>> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const handle = await fs.open(file, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await syncTree(path.join(dir, entry.name));
  await syncFolder(dir);
}

export async function writePackage(out: string, contents: PackageContents, force: boolean): Promise<PackageManifest> {
  const parent = path.dirname(path.resolve(out));
  const base = path.basename(path.resolve(out));
  await checkOutFolder(out, force);
  let temp: string;
  try {
    temp = await fs.mkdtemp(path.join(parent, `.${base}.tmp-`));
  } catch (error) {
    throw ioError(out, `cannot create a folder next to it in ${parent} (${(error as Error).message})`, error);
  }
  try {
    const files: ManifestFile[] = [];
    const add = async (relative: string, data: string | Uint8Array): Promise<void> => {
      const written = await writeSynced(path.join(temp, ...relative.split('/')), data);
      files.push({ path: relative, sha256: written.sha256, bytes: written.bytes });
    };
    await add(MODEL_FILE, contents.modelBytes);
    const inputFiles = tensorFileNames(contents.inputs.map((i) => i.name));
    const outputFiles = tensorFileNames(contents.outputs.map((o) => o.name));
    for (const evalCase of contents.evalCases) {
      for (const input of contents.inputs) {
        await add(evalFilePath(evalCase.name, 'inputs', inputFiles.get(input.name)!), encodeNpy(evalCase.inputs[input.name]!, input.dtype));
      }
      for (const output of contents.outputs) {
        await add(evalFilePath(evalCase.name, 'outputs', outputFiles.get(output.name)!), encodeNpy(evalCase.outputs[output.name]!, output.dtype));
      }
    }
    for (const [relative, data] of Object.entries(contents.extraFiles)) await add(relative, data);
    const manifest: PackageManifest = {
      format: PACKAGE_FORMAT,
      name: contents.name,
      version: contents.version,
      createdAt: new Date().toISOString(),
      model: MODEL_FILE,
      files,
      ...contents.manifestExtras,
      ...(contents.evalCases.length > 0 ? { eval: { cases: contents.evalCases.map((c) => c.name), ...contents.eval } } : {}),
    };
    await writeSynced(path.join(temp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await syncTree(temp);
    await moveIntoPlace(temp, out, parent, base);
    return manifest;
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    if (isEdgerunError(error)) throw error;
    throw ioError(out, `cannot write the package (${(error as Error).message})`, error);
  }
}

async function moveIntoPlace(temp: string, out: string, parent: string, base: string): Promise<void> {
  let previous: string | undefined;
  try {
    await fs.rename(temp, out);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw error;
    // --force over an existing package: move it aside, put the new one in place, then delete the old one.
    previous = path.join(parent, `.${base}.old-${randomBytes(4).toString('hex')}`);
    await fs.rename(out, previous);
    try {
      await fs.rename(temp, out);
    } catch (second) {
      await fs.rename(previous, out);
      throw second;
    }
  }
  await syncFolder(parent);
  if (previous) await fs.rm(previous, { recursive: true, force: true });
}
