/**
 * Reads tensor data stored outside the .onnx file (TensorProto.data_location = EXTERNAL).
 * The location is untrusted: only regular files inside the model's folder are read, after resolving
 * symlinks, and only the byte range the tensor's dims require.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';

export interface ExternalDataEntry {
  key?: string | null;
  value?: string | null;
}

export interface ExternalDataRequest {
  tensorName: string;
  entries: readonly ExternalDataEntry[];
  /** Bytes the tensor's dims and element type require. */
  expectedBytes: number;
}

export class ExternalDataReader {
  private realBaseDir: string | undefined;

  constructor(private readonly baseDir: string | undefined, private readonly source: string) {}

  read(request: ExternalDataRequest): Uint8Array {
    const { tensorName } = request;
    const fields = this.parseEntries(request);
    const filePath = this.resolveInsideBase(tensorName, fields.location);
    const fd = this.open(tensorName, fields.location, filePath);
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) this.fail(tensorName, `location '${fields.location}' is not a regular file`, fields.location);
      const end = fields.offset + fields.length;
      if (end > stat.size) {
        this.fail(tensorName, `range [${fields.offset}, ${end}) lies outside '${fields.location}' (${stat.size} bytes)`,
          fields.location);
      }
      const bytes = new Uint8Array(fields.length);
      let done = 0;
      while (done < fields.length) {
        const n = fs.readSync(fd, bytes, done, fields.length - done, fields.offset + done);
        if (n === 0) this.fail(tensorName, `'${fields.location}' ended early`, fields.location);
        done += n;
      }
      return bytes;
    } finally {
      fs.closeSync(fd);
    }
  }

  private parseEntries(request: ExternalDataRequest): { location: string; offset: number; length: number } {
    const { tensorName, entries, expectedBytes } = request;
    const values = new Map<string, string>();
    for (const entry of entries) values.set(entry.key ?? '', entry.value ?? '');
    const location = values.get('location');
    if (!location) this.fail(tensorName, 'external data has no location');
    const offset = this.parseNonNegative(tensorName, 'offset', values.get('offset'), 0);
    const length = this.parseNonNegative(tensorName, 'length', values.get('length'), expectedBytes);
    if (length !== expectedBytes) {
      this.fail(tensorName, `external data length ${length} does not match the ${expectedBytes} bytes its dims require`,
        location);
    }
    return { location, offset, length };
  }

  private parseNonNegative(tensorName: string, key: string, text: string | undefined, fallback: number): number {
    if (text === undefined) return fallback;
    if (!/^\d{1,15}$/.test(text)) this.fail(tensorName, `external data ${key} '${text}' is not a non-negative integer`);
    return Number(text);
  }

  private resolveInsideBase(tensorName: string, location: string): string {
    if (this.baseDir === undefined) {
      this.fail(tensorName, 'the model was decoded from bytes without a base folder, so external data cannot be read',
        location);
    }
    const segments = location.split(/[\\/]/);
    if (path.isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.startsWith('\\') ||
        segments.includes('..') || location.includes('\0')) {
      this.fail(tensorName, `location '${location}' must be a relative path inside the model folder`, location);
    }
    this.realBaseDir ??= this.realpath(tensorName, location, this.baseDir);
    const real = this.realpath(tensorName, location, path.resolve(this.realBaseDir, location));
    const relative = path.relative(this.realBaseDir, real);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      this.fail(tensorName, `location '${location}' resolves outside the model folder`, location);
    }
    return real;
  }

  private realpath(tensorName: string, location: string, target: string): string {
    try {
      return fs.realpathSync(target);
    } catch (error) {
      this.fail(tensorName, `external data file '${location}' cannot be found (${(error as Error).message})`, location,
        error);
    }
  }

  private open(tensorName: string, location: string, filePath: string): number {
    try {
      return fs.openSync(filePath, 'r');
    } catch (error) {
      this.fail(tensorName, `external data file '${location}' cannot be opened (${(error as Error).message})`, location,
        error);
    }
  }

  private fail(tensorName: string, reason: string, location?: string, cause?: unknown): never {
    throw new EdgerunError('EDGERUN_ERR_ONNX_EXTERNAL_DATA', `${this.source}: tensor '${tensorName}': ${reason}`,
      { file: this.source, tensor: tensorName, ...(location === undefined ? {} : { location }) },
      cause === undefined ? undefined : { cause });
  }
}
