/** Checks the files a manifest lists: inside the package folder (symlinks included), regular, size and sha256. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type ManifestFile, packageError } from './manifest.ts';

export async function sha256File(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** True when `candidate` is `root` or lies below it (both already resolved). */
export function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The real path of a listed file, after checking that it (and every symlink on the way) stays inside the
 * package folder `rootReal` and is a regular file.
 */
export async function resolvePackageFile(rootReal: string, relativePath: string, source: string): Promise<string> {
  const joined = path.join(rootReal, ...relativePath.split('/'));
  let real: string;
  try {
    real = await fs.realpath(joined);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw packageError(source, `${relativePath} ${missing ? 'is listed in the manifest but missing' : `cannot be read (${(error as Error).message})`}`,
      { file: relativePath });
  }
  if (!isInside(rootReal, real)) {
    throw packageError(source, `${relativePath} resolves (through a symlink) to ${real}, outside the package folder`, { file: relativePath });
  }
  const stat = await fs.stat(real);
  if (!stat.isFile()) throw packageError(source, `${relativePath} is not a regular file`, { file: relativePath });
  return real;
}

/** Checks one listed file's size and (unless skipped) sha256; returns its resolved path. */
export async function checkPackageFile(rootReal: string, file: ManifestFile, source: string,
  verifyHash: boolean): Promise<string> {
  const real = await resolvePackageFile(rootReal, file.path, source);
  const { size } = await fs.stat(real);
  if (size !== file.bytes) {
    throw packageError(source, `${file.path} is ${size} bytes but the manifest says ${file.bytes}`,
      { file: file.path, expected: file.bytes, actual: size });
  }
  if (verifyHash) {
    const actual = await sha256File(real);
    if (actual !== file.sha256) {
      throw packageError(source, `${file.path} has sha256 ${actual} but the manifest says ${file.sha256}`,
        { file: file.path, expected: file.sha256, actual });
    }
  }
  return real;
}
