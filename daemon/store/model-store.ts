/**
 * The on-disk model store (layout in store-layout.ts): atomic install from a package folder, an active
 * pointer per model, rollback to the versions that served before, retention, and crash recovery at open.
 * One writer at a time, in this process and across processes (store-lock.ts); reads take no lock, because
 * every change becomes visible in a single rename.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { logger } from '../log.ts';
import { MANIFEST_FILE, type ManifestFile } from '../package/manifest.ts';
import { sha256File } from '../package/package-files.ts';
import { type ModelPackage, readManifest, readPackage, type ReadPackageOptions } from '../package/read-package.ts';
import { compareVersions, isValidModelName, isValidVersion } from '../package/versions.ts';
import { type ActivePointer, readPointer, writePointer } from './active-pointer.ts';
import { copyFileDurable, fsyncPath, fsyncTree, mkdirDurable, randomSuffix, removeTreeDurable } from './durable-fs.ts';
import { type RecoveryReport, recoverStore } from './recovery.ts';
import { collectModel, collectObjects, type RetentionPolicy } from './retention.ts';
import { StoreLock } from './store-lock.ts';
import { StoreLayout, type StoredVersion } from './store-layout.ts';

export type { StoredVersion } from './store-layout.ts';
export type { RecoveryReport } from './recovery.ts';
export type { ActivePointer } from './active-pointer.ts';

const log = logger.child({ component: 'model-store' });

export interface ModelStoreOptions {
  /** Versions that served before the active one, kept for rollback (default 2). */
  keepPrevious?: number;
  /** Installed versions newer than the active one, kept until swapped in (default 2). */
  keepPending?: number;
  /** How long a writer waits for another process's lock (default 30 s). */
  lockTimeoutMs?: number;
}

export interface StoredModel {
  name: string;
  /** The version the pointer names (absent: installed, never activated). */
  active?: string;
  /** Versions that were active before, most recent first. */
  history: string[];
  /** Versions rolled back from. */
  rejected: string[];
  /** Installed versions, newest first. */
  versions: StoredVersion[];
}

export interface InstallResult {
  version: StoredVersion;
  /** False when exactly this package (same manifest hash) was installed already. */
  installed: boolean;
}

const LINK_FALLBACK_CODES = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function storeError(message: string, context: Record<string, unknown> = {}, cause?: unknown): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_STORE', message, context, cause === undefined ? undefined : { cause });
}

export class ModelStore {
  readonly layout: StoreLayout;
  private readonly lock: StoreLock;
  private readonly policy: RetentionPolicy;
  /** What recovery did when the store was opened. */
  lastRecovery: RecoveryReport | undefined;

  private constructor(root: string, options: ModelStoreOptions) {
    this.layout = new StoreLayout(root);
    this.lock = new StoreLock(this.layout.lock, { timeoutMs: options.lockTimeoutMs });
    this.policy = { keepPrevious: options.keepPrevious ?? 2, keepPending: options.keepPending ?? 2 };
    for (const [key, value] of Object.entries(this.policy)) {
      if (!Number.isInteger(value) || value < 0) throw storeError(`store option ${key} must be a non-negative integer, got ${value}`, { option: key });
    }
  }

  /** Opens (creating if needed) the store under `<stateDir>/store` and recovers it. */
  static async open(stateDir: string, options: ModelStoreOptions = {}): Promise<ModelStore> {
    const store = new ModelStore(path.join(path.resolve(stateDir), 'store'), options);
    const { layout } = store;
    try {
      for (const dir of [layout.tmp, layout.objects, layout.packages, layout.active]) await mkdirDurable(dir);
    } catch (error) {
      throw storeError(`${layout.root}: cannot create the model store (${(error as Error).message})`, { folder: layout.root }, error);
    }
    await store.recover();
    return store;
  }

  get root(): string {
    return this.layout.root;
  }

  /** Crash recovery (run by open()); safe to run again at any time. */
  async recover(): Promise<RecoveryReport> {
    const report = await this.write('recover the store', () => recoverStore(this.layout, this.policy));
    this.lastRecovery = report;
    if (report.removedTemps || report.removedPackages.length || report.repairedPointers.length) log.info(report, 'store recovered');
    return report;
  }

  /**
   * Installs a package folder: validated (every hash), each file copied into objects/ (re-hashed while
   * copying, so a file changed since validation is caught), the package assembled in tmp/ and renamed into
   * packages/<name>/<version>. Installing the same package again is a no-op; the same version with other
   * contents is refused. The new version is not activated.
   */
  async install(sourceDir: string): Promise<InstallResult> {
    const before = await readManifest(sourceDir);
    const pkg = await readPackage(sourceDir);
    if (pkg.manifestSha256 !== before.sha256) {
      throw new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${sourceDir}: ${MANIFEST_FILE} changed while the package was being read`, { package: sourceDir });
    }
    const { manifest } = before;
    return this.write(`install ${manifest.name} ${manifest.version}`, async () => {
      const existing = await this.layout.findVersion(manifest.name, manifest.version);
      if (existing !== undefined) {
        const stored = await this.layout.describe(manifest.name, existing);
        if (stored?.manifestSha256 === before.sha256) return { version: stored, installed: false };
        throw storeError(`${manifest.name} version ${manifest.version} is already installed (as ${existing}) with different contents`,
          { model: manifest.name, version: manifest.version });
      }
      const staging = path.join(this.layout.tmp, `install-${manifest.name}-${randomSuffix()}`);
      try {
        await fs.mkdir(staging);
        for (const file of manifest.files) await this.placeFile(path.join(before.dir, ...file.path.split('/')), file, staging, sourceDir);
        const manifestHandle = await fs.open(path.join(staging, MANIFEST_FILE), 'wx', 0o444);
        try {
          await manifestHandle.writeFile(before.bytes);
          await manifestHandle.sync();
        } finally {
          await manifestHandle.close();
        }
        await fsyncTree(staging);
        await mkdirDurable(this.layout.modelDir(manifest.name));
        await fs.rename(staging, this.layout.versionDir(manifest.name, manifest.version));
        await fsyncPath(this.layout.modelDir(manifest.name));
      } catch (error) {
        await fs.rm(staging, { recursive: true, force: true });
        if (isEdgerunError(error)) throw error;
        throw storeError(`cannot install ${manifest.name} ${manifest.version} from ${sourceDir} (${(error as Error).message})`,
          { model: manifest.name, version: manifest.version }, error);
      }
      log.info({ model: manifest.name, version: manifest.version }, 'installed a package');
      await collectModel(this.layout, manifest.name, this.policy, manifest.version);
      const stored = await this.layout.describe(manifest.name, manifest.version);
      if (!stored) throw storeError(`${manifest.name} ${manifest.version} vanished right after its install`, { model: manifest.name });
      return { version: stored, installed: true };
    });
  }

  /** Makes `version` the active one; the one it replaces becomes the first rollback target. */
  async activate(name: string, version: string): Promise<ActivePointer> {
    return this.write(`activate ${name} ${version}`, async () => {
      const target = await this.requireComplete(name, version);
      const current = (await readPointer(this.layout.pointer(name))) ?? undefined;
      if (current?.version === target) return current;
      const differs = (v: string) => compareVersions(v, target) !== 0;
      const history = current ? [current.version, ...current.history].filter(differs) : [];
      const pointer = await writePointer(this.layout.pointer(name), {
        version: target,
        history: history.filter((v, i) => history.findIndex((w) => compareVersions(v, w) === 0) === i),
        rejected: (current?.rejected ?? []).filter(differs),
      });
      log.info({ model: name, version: target, previous: current?.version }, 'activated a version');
      await collectModel(this.layout, name, this.policy);
      await collectObjects(this.layout);
      return (await readPointer(this.layout.pointer(name))) ?? pointer;
    });
  }

  /**
   * Activates the most recent previous version that is still installed (or `to`), and marks the version
   * rolled back from as rejected.
   */
  async rollback(name: string, to?: string): Promise<ActivePointer> {
    return this.write(`roll back ${name}`, async () => {
      const current = await readPointer(this.layout.pointer(name));
      if (!current) throw storeError(`${name} has no active version to roll back from`, { model: name });
      let target: string | undefined;
      for (const candidate of to !== undefined ? [to] : current.history) {
        const found = await this.layout.findVersion(name, candidate);
        if (found !== undefined && compareVersions(found, current.version) !== 0) {
          target = await this.requireComplete(name, found);
          break;
        }
      }
      if (target === undefined) {
        throw storeError(to !== undefined ? `${name} cannot roll back to ${to}: not installed` : `${name} has no previous version installed to roll back to`,
          { model: name, ...(to !== undefined ? { version: to } : {}) });
      }
      const differs = (v: string) => compareVersions(v, target!) !== 0;
      const pointer = await writePointer(this.layout.pointer(name), {
        version: target,
        history: current.history.filter(differs),
        rejected: [current.version, ...current.rejected.filter((v) => compareVersions(v, current.version) !== 0)],
      });
      log.warn({ model: name, from: current.version, to: target }, 'rolled back');
      await collectModel(this.layout, name, this.policy);
      await collectObjects(this.layout);
      return pointer;
    });
  }

  /** Every model with installed versions, by name. */
  async list(): Promise<StoredModel[]> {
    const models: StoredModel[] = [];
    for (const name of await this.layout.modelNames()) {
      const model = await this.get(name);
      if (model) models.push(model);
    }
    return models;
  }

  async get(name: string): Promise<StoredModel | undefined> {
    if (!isValidModelName(name)) return undefined;
    const versions: StoredVersion[] = [];
    for (const version of await this.layout.versionNames(name)) {
      const stored = await this.layout.describe(name, version).catch(() => undefined);
      if (stored) versions.push(stored);
    }
    if (versions.length === 0) return undefined;
    const pointer = (await readPointer(this.layout.pointer(name))) ?? undefined;
    return {
      name,
      ...(pointer ? { active: pointer.version } : {}),
      history: pointer?.history ?? [],
      rejected: pointer?.rejected ?? [],
      versions,
    };
  }

  /** The active version's folder name, if the model has one. */
  async activeVersion(name: string): Promise<string | undefined> {
    if (!isValidModelName(name)) return undefined;
    return (await readPointer(this.layout.pointer(name)))?.version;
  }

  /** Reads (and by default hash-verifies) an installed version. */
  async readPackage(name: string, version: string, options?: ReadPackageOptions): Promise<ModelPackage> {
    const found = await this.layout.findVersion(name, version);
    if (found === undefined) {
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model ${name} version ${version} is not installed in the store`, { model: name, version });
    }
    return readPackage(this.layout.versionDir(name, found), options);
  }

  private write<T>(what: string, action: () => Promise<T>): Promise<T> {
    return this.lock.run(what, action);
  }

  /** The installed folder name of `version` after checking the package is complete (manifest, files, sizes). */
  private async requireComplete(name: string, version: string): Promise<string> {
    if (!isValidModelName(name) || !isValidVersion(version)) {
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model ${name} version ${version} is not installed in the store`, { model: name, version });
    }
    const found = await this.layout.findVersion(name, version);
    if (found === undefined) {
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model ${name} version ${version} is not installed in the store`, { model: name, version });
    }
    await readPackage(this.layout.versionDir(name, found), { verifyHashes: false });
    return found;
  }

  /** Puts one file of a package being installed into objects/ (once per content) and links it into `staging`. */
  private async placeFile(source: string, file: ManifestFile, staging: string, sourceDir: string): Promise<void> {
    const object = this.layout.object(file.sha256);
    if (!(await this.objectIntact(object, file))) {
      const temp = path.join(this.layout.tmp, `object-${randomSuffix()}`);
      const copied = await copyFileDurable(source, temp);
      if (copied.sha256 !== file.sha256 || copied.bytes !== file.bytes) {
        await fs.rm(temp, { force: true });
        throw new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${sourceDir}: ${file.path} changed while it was being installed`,
          { package: sourceDir, file: file.path });
      }
      await fs.rename(temp, object);
      await fsyncPath(this.layout.objects);
    }
    const target = path.join(staging, ...file.path.split('/'));
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.link(object, target);
    } catch (error) {
      if (!LINK_FALLBACK_CODES.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      await copyFileDurable(object, target);
    }
  }

  /** Whether an existing object holds exactly the listed bytes (a corrupt one is replaced). */
  private async objectIntact(object: string, file: ManifestFile): Promise<boolean> {
    const stat = await fs.stat(object).catch(() => undefined);
    if (!stat) return false;
    if (stat.size === file.bytes && (await sha256File(object)) === file.sha256) return true;
    log.warn({ object: file.sha256 }, 'replacing a corrupt store object');
    await removeTreeDurable(object, this.layout.tmp);
    return false;
  }
}
