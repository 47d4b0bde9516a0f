/**
 * Where the manager finds the version of a model to serve: the store (its active pointer) and the plain
 * models folder. With a store, a package in the folder newer than the store's active version is installed into
 * the store first (so it gains atomic install, rollback targets and crash recovery); bare `NAME.onnx` files
 * are served from the folder directly.
 */
import { EdgerunError } from '../errors.ts';
import { logger } from '../log.ts';
import { type FolderModel, readFolderModel, scanModelsFolder } from '../package/models-folder.ts';
import type { ModelPackage } from '../package/read-package.ts';
import { compareVersions } from '../package/versions.ts';
import type { ModelStore } from '../store/model-store.ts';

export interface Candidate {
  pkg: ModelPackage;
  origin: 'store' | 'folder';
  /** True when reading it installed the package into the store. */
  installed?: boolean;
}

/** A version found for a model, not yet read: reading validates it (and may install it into the store). */
export interface Located {
  name: string;
  version: string;
  origin: 'store' | 'folder';
  read(): Promise<Candidate>;
}

const log = logger.child({ component: 'model-manager' });

export class ModelSources {
  constructor(readonly store: ModelStore | undefined, readonly modelsDir: string | undefined) {}

  /** Every model name either source holds. */
  async names(): Promise<string[]> {
    const names = new Set<string>();
    if (this.store) for (const model of await this.store.list()) names.add(model.name);
    for (const name of (await this.folder()).keys()) names.add(name);
    return [...names].sort();
  }

  /** The version `name` should serve now; undefined when no source has the model. */
  async locate(name: string): Promise<Located | undefined> {
    const inFolder = (await this.folder()).get(name);
    const fromFolder = (model: FolderModel): Located => ({
      name, version: model.version, origin: 'folder', read: async () => ({ pkg: await readFolderModel(model), origin: 'folder' }),
    });
    const fromStore = (version: string): Located => ({
      name, version, origin: 'store', read: async () => ({ pkg: await this.store!.readPackage(name, version), origin: 'store' }),
    });
    if (!this.store) return inFolder ? fromFolder(inFolder) : undefined;
    const stored = await this.store.get(name);
    const active = stored?.active;
    if (inFolder?.kind === 'package' && (active === undefined || compareVersions(inFolder.version, active) > 0)) {
      const store = this.store;
      return {
        name, version: inFolder.version, origin: 'store',
        read: async () => {
          const { installed, version } = await store.install(inFolder.path);
          return { pkg: await store.readPackage(name, version.version), origin: 'store', installed };
        },
      };
    }
    if (active !== undefined) return fromStore(active);
    if (inFolder) return fromFolder(inFolder);
    // Installed but never activated (e.g. by the fleet agent): the newest version not rolled back from.
    const pending = stored?.versions.find((v) => !stored.rejected.some((r) => compareVersions(r, v.version) === 0));
    return pending ? fromStore(pending.version) : undefined;
  }

  /**
   * What to serve when version `failed` could not be (it failed its gate or load, e.g. at start with a newer
   * package in the models folder): the store's active version, then the versions that were active before it
   * (most recent first) — installed, never one rolled back from, never `failed` itself.
   */
  async fallbacks(name: string, failed: string): Promise<Located[]> {
    const stored = this.store && await this.store.get(name);
    if (!stored) return [];
    const same = (a: string) => (b: string) => compareVersions(a, b) === 0;
    const order: string[] = [];
    for (const version of [...(stored.active !== undefined ? [stored.active] : []), ...stored.history]) {
      if (same(version)(failed) || stored.rejected.some(same(version)) || order.some(same(version))) continue;
      if (stored.versions.some((v) => same(version)(v.version))) order.push(version);
    }
    return Promise.all(order.map((version) => this.stored(name, version)));
  }

  /** A specific version installed in the store. */
  async stored(name: string, version: string): Promise<Located> {
    const found = this.store && await this.store.layout.findVersion(name, version);
    if (!this.store || found === undefined) {
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model '${name}' version '${version}' is not installed in the ${this.store ? '' : 'absent '}model store`,
        { model: name, version });
    }
    const store = this.store;
    return { name, version: found, origin: 'store', read: async () => ({ pkg: await store.readPackage(name, found), origin: 'store' }) };
  }

  private async folder(): Promise<Map<string, FolderModel>> {
    if (!this.modelsDir) return new Map();
    const scan = await scanModelsFolder(this.modelsDir);
    for (const problem of scan.problems) log.warn({ path: problem.path, err: problem.error.message }, 'skipping an unservable entry of the models folder');
    return scan.models;
  }
}
