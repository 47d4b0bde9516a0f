/**
 * What the store keeps: per model the active version, the `keepPrevious` versions that were active most
 * recently (rollback targets), and the `keepPending` newest versions above the active one (installed, waiting
 * to be swapped in); everything else is deleted, then every object no package lists. Runs under the lock.
 */
import fs from 'node:fs/promises';
import { logger } from '../log.ts';
import { readManifest } from '../package/read-package.ts';
import { compareVersions } from '../package/versions.ts';
import { type ActivePointer, readPointer, writePointer } from './active-pointer.ts';
import { fsyncPath, removeTreeDurable } from './durable-fs.ts';
import { readdirOrEmpty, type StoreLayout } from './store-layout.ts';

const log = logger.child({ component: 'model-store' });

export interface RetentionPolicy {
  keepPrevious: number;
  keepPending: number;
}

const same = (a: string) => (b: string): boolean => compareVersions(a, b) === 0;

/** The versions of one model to keep, given what is installed (any order) and its pointer. */
export function versionsToKeep(installed: string[], pointer: ActivePointer | undefined, policy: RetentionPolicy): Set<string> {
  const newestFirst = [...installed].sort((a, b) => compareVersions(b, a));
  const keep = new Set<string>();
  const active = pointer ? newestFirst.find(same(pointer.version)) : undefined;
  if (active) keep.add(active);
  const previous = (pointer?.history ?? []).map((v) => newestFirst.find(same(v))).filter((v): v is string => v !== undefined && v !== active);
  for (const version of previous.slice(0, policy.keepPrevious)) keep.add(version);
  const pending = newestFirst.filter((v) => active === undefined || compareVersions(v, active) > 0);
  for (const version of pending.slice(0, policy.keepPending)) keep.add(version);
  return keep;
}

/** Deletes the versions of `name` the policy does not keep (except `protect`); trims the pointer's history to what remains. */
export async function collectModel(layout: StoreLayout, name: string, policy: RetentionPolicy,
  protect?: string): Promise<string[]> {
  const installed = await layout.versionNames(name);
  const pointer = (await readPointer(layout.pointer(name))) ?? undefined;
  const keep = versionsToKeep(installed, pointer, policy);
  // A version just installed stays until the next collection, even when older than the active one.
  if (protect !== undefined) keep.add(protect);
  const removed: string[] = [];
  for (const version of installed) {
    if (keep.has(version)) continue;
    await removeTreeDurable(layout.versionDir(name, version), layout.tmp);
    removed.push(version);
  }
  if (removed.length > 0) log.info({ model: name, removed }, 'removed old model versions');
  if (pointer) {
    const history = pointer.history.filter((v) => [...keep].some(same(v))).slice(0, policy.keepPrevious);
    if (history.length !== pointer.history.length) await writePointer(layout.pointer(name), { ...pointer, history });
  }
  return removed;
}

/** Deletes objects that no installed package lists. */
export async function collectObjects(layout: StoreLayout): Promise<number> {
  const referenced = new Set<string>();
  for (const name of await layout.modelNames()) {
    for (const version of await layout.versionNames(name)) {
      try {
        const { manifest } = await readManifest(layout.versionDir(name, version));
        for (const file of manifest.files) referenced.add(file.sha256);
      } catch (error) {
        // Never delete an object that might still be listed: skip this round, recovery sorts the package out.
        log.warn({ model: name, version, err: (error as Error).message }, 'unreadable manifest: object collection skipped');
        return 0;
      }
    }
  }
  let removed = 0;
  for (const entry of await readdirOrEmpty(layout.objects)) {
    if (referenced.has(entry)) continue;
    await fs.rm(layout.object(entry), { force: true, recursive: true });
    removed++;
  }
  if (removed > 0) await fsyncPath(layout.objects);
  return removed;
}
