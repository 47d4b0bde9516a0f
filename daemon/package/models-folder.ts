/**
 * The plain models folder the daemon serves without any configuration: every package folder (holding
 * manifest.json) and every bare `NAME.onnx` directly inside it. Scanning reads manifests only; the chosen
 * package is fully validated when it is loaded.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { MANIFEST_FILE } from './manifest.ts';
import { BARE_MODEL_VERSION, bareModelName, type ModelPackage, readBareModel, readManifest, readPackage, type ReadPackageOptions } from './read-package.ts';
import { compareVersions } from './versions.ts';

export interface FolderModel {
  name: string;
  version: string;
  kind: 'package' | 'bare';
  /** The package folder or the .onnx file. */
  path: string;
}

export interface FolderScan {
  /** One entry per model name: a package beats a bare file, a newer package version beats an older one. */
  models: Map<string, FolderModel>;
  /** Entries that look like models but cannot be served, with the reason. */
  problems: { path: string; error: EdgerunError }[];
}

export async function scanModelsFolder(dir: string): Promise<FolderScan> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { models: new Map(), problems: [] };
    throw new EdgerunError('EDGERUN_ERR_IO', `${dir}: cannot list the models folder (${(error as Error).message})`, { folder: dir }, { cause: error });
  }
  const models = new Map<string, FolderModel>();
  const problems: FolderScan['problems'] = [];
  const offer = (candidate: FolderModel): void => {
    const current = models.get(candidate.name);
    const better = !current
      || (current.kind === 'bare' && candidate.kind === 'package')
      || (current.kind === candidate.kind && compareVersions(candidate.version, current.version) > 0);
    if (better) models.set(candidate.name, candidate);
  };
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    const stat = await fs.stat(full).catch(() => undefined);
    if (stat?.isDirectory()) {
      if (!(await fs.stat(path.join(full, MANIFEST_FILE)).catch(() => undefined))) continue;
      try {
        const { manifest } = await readManifest(full);
        offer({ name: manifest.name, version: manifest.version, kind: 'package', path: full });
      } catch (error) {
        if (!isEdgerunError(error)) throw error;
        problems.push({ path: full, error });
      }
    } else if (stat?.isFile() && entry.name.endsWith('.onnx')) {
      const name = bareModelName(full);
      if (name) offer({ name, version: BARE_MODEL_VERSION, kind: 'bare', path: full });
      else problems.push({ path: full, error: new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${full}: a bare model file must be named NAME.onnx with NAME matching [A-Za-z0-9][A-Za-z0-9._-]*`, { file: entry.name }) });
    }
  }
  return { models, problems };
}

/** Reads (and validates) what a scan found. */
export function readFolderModel(model: FolderModel, options?: ReadPackageOptions): Promise<ModelPackage> {
  return model.kind === 'package' ? readPackage(model.path, options) : readBareModel(model.path);
}
