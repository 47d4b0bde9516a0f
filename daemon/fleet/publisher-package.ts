/**
 * Turns a package folder into what a deployment sends: the package is read and verified (every hash) first,
 * then its files — manifest.json first, then every listed file in manifest order — form one byte stream that
 * is cut into chunks. Files stay on disk and are read chunk by chunk, so a large package is never held in memory;
 * manifest.json is the exact bytes that were verified.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import { MANIFEST_FILE } from '../package/manifest.ts';
import { readManifest, readPackage } from '../package/read-package.ts';
import { DEFAULT_CHUNK_BYTES, type DeploymentFile, type DeploymentManifest } from './protocol.ts';

export interface PackageSource {
  /** The package folder, resolved. */
  dir: string;
  name: string;
  version: string;
  targets: string[];
  files: DeploymentFile[];
  totalBytes: number;
  /** Reads `length` bytes of the concatenated stream at `offset`. */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

interface Segment {
  start: number;
  bytes: number;
  handle: fs.FileHandle | null;
  inMemory: Buffer | null;
}

/** Reads and verifies the package at `dir` and opens its files for chunked reading. */
export async function openPackageSource(dir: string): Promise<PackageSource> {
  const pkg = await readPackage(dir, { verifyHashes: true });
  const manifestRead = await readManifest(dir);
  if (manifestRead.sha256 !== pkg.manifestSha256) {
    throw new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${dir}: manifest.json changed while the package was being verified`, { dir });
  }
  const manifest = manifestRead.manifest;
  const files: DeploymentFile[] = [{ path: MANIFEST_FILE, sha256: manifestRead.sha256, bytes: manifestRead.bytes.length }];
  const segments: Segment[] = [{ start: 0, bytes: manifestRead.bytes.length, handle: null, inMemory: Buffer.from(manifestRead.bytes) }];
  let offset = manifestRead.bytes.length;
  try {
    for (const file of manifest.files) {
      files.push({ path: file.path, sha256: file.sha256, bytes: file.bytes });
      const handle = await fs.open(path.join(pkg.dir, ...file.path.split('/')), 'r');
      segments.push({ start: offset, bytes: file.bytes, handle, inMemory: null });
      offset += file.bytes;
    }
  } catch (error) {
    await Promise.all(segments.map((segment) => segment.handle?.close()));
    throw new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${dir}: cannot open a listed file: ${(error as Error).message}`, { dir }, { cause: error });
  }
  const totalBytes = offset;

  async function read(start: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(Math.max(0, Math.min(length, totalBytes - start)));
    let filled = 0;
    for (const segment of segments) {
      if (filled === out.length) break;
      const position = start + filled;
      if (position >= segment.start + segment.bytes || position < segment.start) continue;
      const within = position - segment.start;
      const take = Math.min(segment.bytes - within, out.length - filled);
      if (segment.inMemory) {
        segment.inMemory.copy(out, filled, within, within + take);
      } else {
        const { bytesRead } = await segment.handle!.read(out, filled, take, within);
        if (bytesRead !== take) {
          throw new EdgerunError('EDGERUN_ERR_PACKAGE_INVALID', `${dir}: a listed file shrank while it was being sent`, { dir });
        }
      }
      filled += take;
    }
    return out;
  }

  return {
    dir: pkg.dir,
    name: manifest.name,
    version: manifest.version,
    targets: manifest.targets ?? [],
    files,
    totalBytes,
    read,
    close: async () => { await Promise.all(segments.map((segment) => segment.handle?.close())); },
  };
}

export interface ManifestOptions {
  chunkBytes?: number;
  /** How long devices may start the deployment, from now. */
  expiresInMs: number;
  rolloutId?: string;
  now?: Date;
}

/** A fresh DeploymentManifest (new deploymentId and transferId) for `source`. */
export function buildDeploymentManifest(source: PackageSource, options: ManifestOptions): DeploymentManifest {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const now = options.now ?? new Date();
  return {
    protocol: 1,
    kind: 'deploy',
    deploymentId: crypto.randomUUID(),
    transferId: crypto.randomUUID(),
    model: { name: source.name, version: source.version },
    files: source.files,
    totalBytes: source.totalBytes,
    chunkBytes,
    chunkCount: Math.max(1, Math.ceil(source.totalBytes / chunkBytes)),
    ...(source.targets.length > 0 ? { targets: source.targets } : {}),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + options.expiresInMs).toISOString(),
    ...(options.rolloutId ? { rolloutId: options.rolloutId } : {}),
  };
}
