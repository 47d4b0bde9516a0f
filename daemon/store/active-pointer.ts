/**
 * `store/active/<name>`: which version of a model serves, the versions that served before it (most recent
 * first, for rollback) and the versions rolled back from (never chosen again by recovery's fallback).
 * Written whole and atomically (temp, fsync, rename, folder fsync), so a crash leaves the old or the new one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isValidVersion } from '../package/versions.ts';
import { writeFileDurable } from './durable-fs.ts';

export const POINTER_FORMAT = 'edgerun-active/1';

export interface ActivePointer {
  version: string;
  /** Versions that were active before, most recent first. */
  history: string[];
  /** Versions rolled back from. */
  rejected: string[];
  updatedAt: string;
}

const MAX_LIST = 64;

/** The pointer, or undefined when there is none; `null` when the file exists but is unreadable or malformed. */
export async function readPointer(file: string): Promise<ActivePointer | undefined | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return null;
  }
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const versions = (list: unknown): list is string[] => Array.isArray(list) && list.length <= MAX_LIST
      && list.every((v) => typeof v === 'string' && isValidVersion(v));
    if (value.format !== POINTER_FORMAT || typeof value.version !== 'string' || !isValidVersion(value.version)
      || !versions(value.history) || !versions(value.rejected) || typeof value.updatedAt !== 'string') return null;
    return { version: value.version, history: value.history, rejected: value.rejected, updatedAt: value.updatedAt };
  } catch {
    return null;
  }
}

export async function writePointer(file: string, pointer: Omit<ActivePointer, 'updatedAt'>): Promise<ActivePointer> {
  const full: ActivePointer = {
    version: pointer.version,
    history: pointer.history.slice(0, MAX_LIST),
    rejected: pointer.rejected.slice(0, MAX_LIST),
    updatedAt: new Date().toISOString(),
  };
  await writeFileDurable(file, `${JSON.stringify({ format: POINTER_FORMAT, ...full }, null, 2)}\n`);
  return full;
}

/** Pointer temp files a crash left behind (`.<name>.<random>.tmp`). */
export async function removePointerTemps(folder: string): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(folder)) {
    if (name.startsWith('.') && name.endsWith('.tmp')) {
      await fs.rm(path.join(folder, name), { force: true });
      removed++;
    }
  }
  return removed;
}
