/**
 * Receives one transfer's chunks into <state dir>/fleet/transfers/<transferId>/:
 *   data.bin        the package's files concatenated (manifest order), sized up front
 *   chunks.bitmap   one byte per chunk, 1 = stored
 *   chunks.sha256   32 bytes per chunk: the hash each stored chunk was checked against
 *   package/        the assembled package folder, once every file hash matched
 *
 * A chunk is written synchronously (data, then its hash, then its bitmap byte) before the MQTT handler returns,
 * so the PUBACK that follows never acknowledges a chunk a kill -9 could lose. Nothing is fsynced per chunk:
 * after a power loss the bitmap may claim chunks whose data never reached the disk, so reopening re-hashes every
 * stored chunk against chunks.sha256 and forgets those that do not match; they are asked for again.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import { fsyncPath, fsyncTree } from '../store/durable-fs.ts';
import type { ChunkFrame } from './chunk-frame.ts';
import type { DeploymentManifest } from './protocol.ts';

const HASH_BYTES = 32;
/** A ChunkRequest lists at most this many ranges; the rest are asked for next time. */
export const MAX_REQUEST_RANGES = 256;

export type ChunkOutcome = 'stored' | 'duplicate';

function transferError(manifest: DeploymentManifest, reason: string, context: Record<string, unknown> = {}, cause?: unknown): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_FLEET_TRANSFER', `transfer ${manifest.transferId} (${manifest.model.name} ${manifest.model.version}): ${reason}`,
    { transferId: manifest.transferId, deploymentId: manifest.deploymentId, ...context }, cause === undefined ? undefined : { cause });
}

function ioReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' ? 'the disk is full (ENOSPC)' : (error as Error).message;
}

export class TransferReceiver {
  private readonly bitmap: Buffer;
  private received = 0;
  private storedBytes = 0;
  /** Chunks 0 … contiguous-1 are all stored. */
  private contiguous = 0;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly manifest: DeploymentManifest,
    private readonly dataFd: number,
    private readonly bitmapFd: number,
    private readonly hashFd: number,
    bitmap: Buffer,
  ) {
    this.bitmap = bitmap;
  }

  static dirFor(transfersDir: string, transferId: string): string {
    return path.join(transfersDir, transferId);
  }

  /** Creates the staging files, or reopens them and keeps only the stored chunks whose bytes still match their hash. */
  static async open(transfersDir: string, manifest: DeploymentManifest): Promise<TransferReceiver> {
    const dir = TransferReceiver.dirFor(transfersDir, manifest.transferId);
    const fds: number[] = [];
    try {
      fs.mkdirSync(dir, { recursive: true });
      const openFile = (name: string, size: number): number => {
        const fd = fs.openSync(path.join(dir, name), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
        fds.push(fd);
        if (fs.fstatSync(fd).size !== size) fs.ftruncateSync(fd, size);
        return fd;
      };
      const dataFd = openFile('data.bin', manifest.totalBytes);
      const bitmapFd = openFile('chunks.bitmap', manifest.chunkCount);
      const hashFd = openFile('chunks.sha256', manifest.chunkCount * HASH_BYTES);
      const bitmap = Buffer.alloc(manifest.chunkCount);
      fs.readSync(bitmapFd, bitmap, 0, bitmap.length, 0);
      await fsyncPath(dir);
      const receiver = new TransferReceiver(dir, manifest, dataFd, bitmapFd, hashFd, bitmap);
      receiver.recheckStored();
      return receiver;
    } catch (error) {
      for (const fd of fds) fs.closeSync(fd);
      if (error instanceof EdgerunError) throw error;
      throw transferError(manifest, `cannot prepare the staging files in ${dir}: ${ioReason(error)}`, { dir }, error);
    }
  }

  static async remove(transfersDir: string, transferId: string): Promise<void> {
    await fsp.rm(TransferReceiver.dirFor(transfersDir, transferId), { recursive: true, force: true });
  }

  get receivedChunks(): number { return this.received; }
  get receivedBytes(): number { return this.storedBytes; }
  get contiguousChunks(): number { return this.contiguous; }
  get complete(): boolean { return this.received === this.manifest.chunkCount; }

  has(index: number): boolean { return this.bitmap[index] === 1; }

  chunkSize(index: number): number {
    const { chunkBytes, totalBytes } = this.manifest;
    return Math.min(chunkBytes, totalBytes - index * chunkBytes);
  }

  private recheckStored(): void {
    const storedHash = Buffer.alloc(HASH_BYTES);
    const buffer = Buffer.alloc(this.manifest.chunkBytes);
    for (let index = 0; index < this.manifest.chunkCount; index++) {
      if (this.bitmap[index] !== 1) {
        this.bitmap[index] = 0;
        continue;
      }
      const size = this.chunkSize(index);
      fs.readSync(this.hashFd, storedHash, 0, HASH_BYTES, index * HASH_BYTES);
      fs.readSync(this.dataFd, buffer, 0, size, index * this.manifest.chunkBytes);
      if (createHash('sha256').update(buffer.subarray(0, size)).digest().equals(storedHash)) {
        this.received++;
        this.storedBytes += size;
      } else {
        this.bitmap[index] = 0;
        fs.writeSync(this.bitmapFd, Buffer.of(0), 0, 1, index);
      }
    }
    this.advanceContiguous();
  }

  private advanceContiguous(): void {
    while (this.contiguous < this.manifest.chunkCount && this.bitmap[this.contiguous] === 1) this.contiguous++;
  }

  /**
   * Stores one decoded (self-consistent) frame. A frame of another transfer's shape or of the wrong length
   * (a truncated chunk whose header hash was recomputed) is refused; a chunk already stored is ignored.
   */
  receive(frame: ChunkFrame): ChunkOutcome {
    if (this.closed) throw transferError(this.manifest, 'the transfer was closed');
    const { chunkCount, chunkBytes } = this.manifest;
    if (frame.chunkCount !== chunkCount) {
      throw transferError(this.manifest, `chunk ${frame.index} says the transfer has ${frame.chunkCount} chunks, the manifest ${chunkCount}`, { chunk: frame.index });
    }
    if (this.bitmap[frame.index] === 1) return 'duplicate';
    const size = this.chunkSize(frame.index);
    if (frame.data.length !== size) {
      throw transferError(this.manifest, `chunk ${frame.index} holds ${frame.data.length} bytes, expected ${size}`, { chunk: frame.index });
    }
    try {
      fs.writeSync(this.dataFd, frame.data, 0, size, frame.index * chunkBytes);
      fs.writeSync(this.hashFd, frame.sha256, 0, HASH_BYTES, frame.index * HASH_BYTES);
      fs.writeSync(this.bitmapFd, Buffer.of(1), 0, 1, frame.index);
    } catch (error) {
      // Not the chunk's fault: asking for it again would not help, so the transfer fails (context.storage).
      throw transferError(this.manifest, `cannot store chunk ${frame.index}: ${ioReason(error)}`, { chunk: frame.index, storage: true }, error);
    }
    this.bitmap[frame.index] = 1;
    this.received++;
    this.storedBytes += size;
    this.advanceContiguous();
    return 'stored';
  }

  /** Inclusive [first, last] ranges of chunks not stored yet, lowest first, at most `maxRanges`. */
  missingRanges(maxRanges = MAX_REQUEST_RANGES): [number, number][] {
    const ranges: [number, number][] = [];
    let start = -1;
    for (let index = 0; index <= this.manifest.chunkCount; index++) {
      const missing = index < this.manifest.chunkCount && this.bitmap[index] !== 1;
      if (missing && start < 0) start = index;
      if (!missing && start >= 0) {
        ranges.push([start, index - 1]);
        start = -1;
        if (ranges.length === maxRanges) break;
      }
    }
    return ranges;
  }

  /**
   * Checks every file's sha256 and size against the signed manifest while copying it out of data.bin into
   * package.tmp/, fsyncs the tree and renames it to package/ (reused when a previous run got that far).
   */
  async assemble(): Promise<string> {
    const target = path.join(this.dir, 'package');
    if (fs.existsSync(target)) return target;
    const temp = path.join(this.dir, 'package.tmp');
    await fsp.rm(temp, { recursive: true, force: true });
    try {
      await fsp.mkdir(temp);
      let offset = 0;
      const buffer = Buffer.alloc(1 << 20);
      for (const file of this.manifest.files) {
        const destination = path.join(temp, ...file.path.split('/'));
        await fsp.mkdir(path.dirname(destination), { recursive: true });
        const out = fs.openSync(destination, 'wx', 0o644);
        const hash = createHash('sha256');
        try {
          for (let done = 0; done < file.bytes;) {
            const n = fs.readSync(this.dataFd, buffer, 0, Math.min(buffer.length, file.bytes - done), offset + done);
            if (n === 0) throw new Error(`data.bin ends early at ${offset + done}`);
            hash.update(buffer.subarray(0, n));
            fs.writeSync(out, buffer, 0, n);
            done += n;
          }
          fs.fsyncSync(out);
        } finally {
          fs.closeSync(out);
        }
        const actual = hash.digest('hex');
        if (actual !== file.sha256) {
          throw transferError(this.manifest, `file ${file.path} does not match the signed manifest (sha256 ${actual}, expected ${file.sha256})`, { file: file.path });
        }
        offset += file.bytes;
      }
      await fsyncTree(temp);
      await fsp.rename(temp, target);
      await fsyncPath(this.dir);
    } catch (error) {
      await fsp.rm(temp, { recursive: true, force: true });
      if (error instanceof EdgerunError) throw error;
      throw transferError(this.manifest, `cannot assemble the package: ${ioReason(error)}`, {}, error);
    }
    return target;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.dataFd, this.bitmapFd, this.hashFd]) fs.closeSync(fd);
  }
}
