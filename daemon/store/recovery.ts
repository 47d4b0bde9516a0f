/**
 * Startup recovery: whatever a crash (kill -9, power loss) interrupted, afterwards every package folder is
 * complete and hash-verified, every active pointer names such a package, and no temp file is left.
 * A pointer whose version is broken or missing falls back to the most recent good version it lists in its
 * history, else to the newest good version not rolled back from; with none, the pointer is removed.
 */
import fs from 'node:fs/promises';
import { isEdgerunError } from '../errors.ts';
import { logger } from '../log.ts';
import { readPackage } from '../package/read-package.ts';
import { compareVersions, isValidModelName, isValidVersion } from '../package/versions.ts';
import { readPointer, removePointerTemps, writePointer } from './active-pointer.ts';
import { fsyncPath, removeTreeDurable } from './durable-fs.ts';
import { collectModel, collectObjects, type RetentionPolicy } from './retention.ts';
import { removeLockLeftovers } from './store-lock.ts';
import { readdirOrEmpty, type StoreLayout } from './store-layout.ts';

const log = logger.child({ component: 'model-store' });

export interface RecoveryReport {
  /** Temp files and folders removed (interrupted installs, copies, deletions, pointer writes). */
  removedTemps: number;
  /** Package folders removed because they were incomplete, corrupt or misplaced. */
  removedPackages: { name: string; version: string; reason: string }[];
  /** Active pointers rewritten or removed. */
  repairedPointers: { name: string; from?: string; to?: string; reason: string }[];
  /** Versions deleted by the retention policy, and unreferenced objects. */
  collectedVersions: { name: string; version: string }[];
  removedObjects: number;
}

const same = (a: string) => (b: string): boolean => compareVersions(a, b) === 0;

export async function recoverStore(layout: StoreLayout, policy: RetentionPolicy): Promise<RecoveryReport> {
  const report: RecoveryReport = { removedTemps: 0, removedPackages: [], repairedPointers: [], collectedVersions: [], removedObjects: 0 };

  for (const entry of await readdirOrEmpty(layout.tmp)) {
    await fs.rm(`${layout.tmp}/${entry}`, { recursive: true, force: true });
    report.removedTemps++;
  }
  report.removedTemps += await removePointerTemps(layout.active);
  report.removedTemps += await removeLockLeftovers(layout.lock);

  const good = new Map<string, string[]>();
  for (const name of await readdirOrEmpty(layout.packages)) {
    const modelDir = layout.modelDir(name);
    if (!isValidModelName(name) || !(await fs.lstat(modelDir).catch(() => undefined))?.isDirectory()) {
      await removeTreeDurable(modelDir, layout.tmp);
      report.removedPackages.push({ name, version: '', reason: 'not a model folder' });
      continue;
    }
    const versions: string[] = [];
    for (const version of await readdirOrEmpty(modelDir)) {
      const reason = await packageProblem(layout, name, version);
      if (reason) {
        await removeTreeDurable(layout.versionDir(name, version), layout.tmp);
        report.removedPackages.push({ name, version, reason });
        log.warn({ model: name, version, reason }, 'removed a broken package from the store');
      } else {
        versions.push(version);
      }
    }
    if (versions.length === 0) {
      await fs.rmdir(modelDir).catch(() => undefined);
      await fsyncPath(layout.packages);
    } else {
      good.set(name, versions.sort((a, b) => compareVersions(b, a)));
    }
  }

  for (const name of await readdirOrEmpty(layout.active)) {
    const file = layout.pointer(name);
    const versions = isValidModelName(name) ? good.get(name) ?? [] : [];
    const pointer = await readPointer(file);
    if (pointer && versions.some(same(pointer.version))) continue;
    const history = pointer?.history ?? [];
    const rejected = pointer?.rejected ?? [];
    const fallback = history.map((v) => versions.find(same(v))).find((v) => v !== undefined)
      ?? versions.find((v) => !rejected.some(same(v)));
    const reason = pointer === null ? 'unreadable pointer' : pointer ? `version ${pointer.version} is missing or broken` : 'not a pointer';
    if (fallback) {
      await writePointer(file, { version: fallback, history: history.filter((v) => !same(fallback)(v) && versions.some(same(v))), rejected });
      report.repairedPointers.push({ name, ...(pointer ? { from: pointer.version } : {}), to: fallback, reason });
    } else {
      await fs.rm(file, { recursive: true, force: true });
      await fsyncPath(layout.active);
      report.repairedPointers.push({ name, ...(pointer ? { from: pointer.version } : {}), reason: `${reason}; no good version left` });
    }
    log.warn(report.repairedPointers.at(-1), 'repaired an active pointer');
  }

  for (const name of good.keys()) {
    for (const version of await collectModel(layout, name, policy)) report.collectedVersions.push({ name, version });
  }
  report.removedObjects = await collectObjects(layout);
  return report;
}

/** Why an installed folder is not a servable package, or undefined when it is complete and every hash matches. */
async function packageProblem(layout: StoreLayout, name: string, version: string): Promise<string | undefined> {
  if (!isValidVersion(version)) return 'not a version folder';
  try {
    const pkg = await readPackage(layout.versionDir(name, version));
    if (pkg.name !== name || pkg.version !== version) return `the manifest says ${pkg.name} ${pkg.version}`;
    return undefined;
  } catch (error) {
    if (isEdgerunError(error)) return error.message;
    if ((error as NodeJS.ErrnoException).code) return (error as Error).message;
    throw error;
  }
}
