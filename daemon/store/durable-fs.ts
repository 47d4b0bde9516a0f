/**
 * The store's only ways of changing the disk, each leaving nothing half-written after a crash at any point:
 * new files are written under a temp name, fsynced and renamed; every folder whose entries change is fsynced;
 * trees are removed by renaming them out of sight first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** fsync of a file or folder (a folder's fsync makes its entries — creates, renames, unlinks — durable). */
export async function fsyncPath(target: string): Promise<void> {
  const handle = await fs.open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `bytes` to `target` atomically: `.name.<random>.tmp` beside it, fsync, rename, fsync of the folder. */
export async function writeFileDurable(target: string, bytes: Uint8Array | string): Promise<void> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomSuffix()}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await fsyncPath(path.dirname(target));
}

/** Copies `source` to a new file `target` (which must not exist), fsyncs it, and returns its sha256. */
export async function copyFileDurable(source: string, target: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await fs.open(target, 'wx', 0o444);
  try {
    for await (const chunk of createReadStream(source, { highWaterMark: 1 << 20 })) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      bytes += buffer.length;
      let written = 0;
      while (written < buffer.length) written += (await handle.write(buffer, written, buffer.length - written)).bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Creates `dir` (and missing parents), fsyncing each parent whose entries changed. */
export async function mkdirDurable(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    if (await exists(current)) break;
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const folder of missing) {
    await fs.mkdir(folder).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'EEXIST') throw error; });
    await fsyncPath(path.dirname(folder));
  }
}

/** fsyncs every folder below and including `root`, deepest first (after building a tree of new entries). */
export async function fsyncTree(root: string): Promise<void> {
  const entries = await fs.readdir(root, { withFileTypes: true });
  for (const entry of entries) if (entry.isDirectory()) await fsyncTree(path.join(root, entry.name));
  await fsyncPath(root);
}

/**
 * Removes a tree so that no crash leaves part of it where it was: renamed into `trashDir` (one atomic step,
 * made durable), then deleted at leisure; recovery empties the trash.
 */
export async function removeTreeDurable(target: string, trashDir: string): Promise<void> {
  const trash = path.join(trashDir, `trash-${path.basename(target)}-${randomSuffix()}`);
  try {
    await fs.rename(target, trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await fsyncPath(path.dirname(target));
  await fs.rm(trash, { recursive: true, force: true });
}

export async function exists(target: string): Promise<boolean> {
  try {
    await fs.lstat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
