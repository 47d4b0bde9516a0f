/**
 * Where things live in the store (under `<state dir>/store/`) and read-only listing of what is there:
 *
 *   lock                          one writer at a time (store-lock.ts)
 *   tmp/                          installs in progress, objects being copied, trees being deleted
 *   objects/<sha256>              every file of every installed package, once, read-only
 *   packages/<name>/<version>/    a complete package: hard links to objects (copies where links fail) + manifest.json
 *   active/<name>                 the active pointer (active-pointer.ts)
 *
 * A package folder only ever appears by renaming a complete, fsynced tree from tmp/, and only ever
 * disappears by being renamed into tmp/, so a listing never sees half a package.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '../package/read-package.ts';
import { compareVersions, isValidModelName, isValidVersion } from '../package/versions.ts';

export interface StoredVersion {
  name: string;
  version: string;
  dir: string;
  manifestSha256: string;
  createdAt: string;
  /** Sum of the listed files' sizes. */
  bytes: number;
}

export class StoreLayout {
  readonly lock: string;
  readonly tmp: string;
  readonly objects: string;
  readonly packages: string;
  readonly active: string;

  constructor(readonly root: string) {
    this.lock = path.join(root, 'lock');
    this.tmp = path.join(root, 'tmp');
    this.objects = path.join(root, 'objects');
    this.packages = path.join(root, 'packages');
    this.active = path.join(root, 'active');
  }

  object(sha256: string): string {
    return path.join(this.objects, sha256);
  }

  modelDir(name: string): string {
    return path.join(this.packages, name);
  }

  versionDir(name: string, version: string): string {
    return path.join(this.packages, name, version);
  }

  pointer(name: string): string {
    return path.join(this.active, name);
  }

  /** Model names with a packages/ folder (valid names only; recovery removes the rest). */
  async modelNames(): Promise<string[]> {
    return (await readdirOrEmpty(this.packages)).filter(isValidModelName).sort();
  }

  /** The version folder names of a model, newest first (valid versions only). */
  async versionNames(name: string): Promise<string[]> {
    return (await readdirOrEmpty(this.modelDir(name))).filter(isValidVersion).sort((a, b) => compareVersions(b, a));
  }

  /** The installed folder name equal to `version` ("1.0" finds "1"), if any. */
  async findVersion(name: string, version: string): Promise<string | undefined> {
    if (!isValidModelName(name) || !isValidVersion(version)) return undefined;
    return (await this.versionNames(name)).find((v) => compareVersions(v, version) === 0);
  }

  /** What an installed version's manifest says; undefined if the folder vanished (deleted meanwhile). */
  async describe(name: string, version: string): Promise<StoredVersion | undefined> {
    const dir = this.versionDir(name, version);
    try {
      const { manifest, sha256 } = await readManifest(dir);
      return {
        name, version, dir, manifestSha256: sha256, createdAt: manifest.createdAt,
        bytes: manifest.files.reduce((sum, f) => sum + f.bytes, 0),
      };
    } catch (error) {
      if (!(await exists(dir))) return undefined;
      throw error;
    }
  }
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function exists(target: string): Promise<boolean> {
  return fs.lstat(target).then(() => true, () => false);
}
