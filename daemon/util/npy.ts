/**
 * NumPy .npy files (format versions 1, 2 and 3), little-endian only: the interchange format for
 * inference inputs, reference outputs and eval sets. Host tensors follow the IR's storage rule
 * (Float32Array for floats, Int32Array for integers and bool, 64-bit integers saturated to int32).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, type DType, type HostData, type Tensor } from '../graph/ir.ts';
import { floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** NumPy dtype code (without byte order) ↔ IR dtype. bfloat16 and the 4-bit types have no NumPy dtype. */
const NPY_CODES: Record<string, DType> = {
  f4: 'float32', f8: 'float64', f2: 'float16',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  b1: 'bool',
};

type NpyDType = Exclude<DType, 'bfloat16' | 'int4' | 'uint4'>;

/** The file dtype for an IR dtype NumPy lacks: bfloat16 widens to float32, int4/uint4 to int8/uint8. */
function npyDTypeOf(dtype: DType): NpyDType {
  if (dtype === 'bfloat16') return 'float32';
  if (dtype === 'int4') return 'int8';
  if (dtype === 'uint4') return 'uint8';
  return dtype;
}

const CODE_BY_DTYPE: Record<NpyDType, string> = {
  float32: 'f4', float64: 'f8', float16: 'f2', int8: 'i1', int16: 'i2', int32: 'i4', int64: 'i8',
  uint8: 'u1', uint16: 'u2', uint32: 'u4', uint64: 'u8', bool: 'b1',
};

function npyError(name: string, reason: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_NPY', `${name}: ${reason}`, { file: name });
}

/** Parses a whole .npy file; `name` (usually the path) is named in every error. */
export function parseNpy(bytes: Uint8Array, name: string): Tensor {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw npyError(name, 'not a .npy file (bad magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw npyError(name, 'truncated header');
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  } else {
    throw npyError(name, `unsupported .npy format version ${major}.${bytes[7]}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw npyError(name, `header claims ${headerLength} bytes but the file is shorter`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const { dtype, itemSize, dims } = parseHeader(header, name);

  const count = elementCount(dims);
  const dataLength = bytes.length - dataStart;
  if (count * itemSize !== dataLength) {
    throw npyError(name, `shape (${dims.join(', ')}) needs ${count * itemSize} bytes of data but the file holds ${dataLength}`);
  }
  const data = decodeData(new DataView(bytes.buffer, bytes.byteOffset + dataStart, dataLength), dtype, count);
  return { dtype, dims, data };
}

function parseHeader(header: string, name: string): { dtype: NpyDType; itemSize: number; dims: number[] } {
  const descrMatch = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(header);
  if (!descrMatch) {
    throw npyError(name, /['"]descr['"]\s*:\s*\[/.test(header)
      ? 'structured (record) dtypes are not supported' : 'header has no descr');
  }
  const descr = descrMatch[2];
  const typeMatch = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!typeMatch) throw npyError(name, `unsupported dtype '${descr}'`);
  const [, byteOrder, kind, sizeText] = typeMatch;
  const code = `${kind}${sizeText}`;
  if (kind === 'O') throw npyError(name, `object arrays ('${descr}') are not supported`);
  const dtype = NPY_CODES[code] as NpyDType | undefined;
  if (dtype === undefined) throw npyError(name, `unsupported dtype '${descr}'`);
  const itemSize = Number(sizeText);
  if (byteOrder === '>' && itemSize > 1) throw npyError(name, `big-endian data ('${descr}') is not supported`);

  const fortranMatch = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  if (!fortranMatch) throw npyError(name, 'header has no fortran_order');
  if (fortranMatch[1] === 'True') throw npyError(name, 'fortran_order True (column-major data) is not supported');

  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shapeMatch) throw npyError(name, 'header has no shape tuple');
  const dims = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map((text) => {
    if (!/^\d+L?$/.test(text)) throw npyError(name, `shape entry '${text}' is not a non-negative integer`);
    const dim = Number.parseInt(text, 10);
    if (dim > INT32_MAX) throw npyError(name, `shape entry ${dim} is too large`);
    return dim;
  });
  return { dtype, itemSize, dims };
}

function decodeData(view: DataView, dtype: NpyDType, count: number): HostData {
  const floats = (at: (i: number) => number): Float32Array => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = at(i);
    return out;
  };
  const ints = (at: (i: number) => number): Int32Array => {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = at(i);
    return out;
  };
  switch (dtype) {
    case 'float32': return floats((i) => view.getFloat32(i * 4, true));
    case 'float64': return floats((i) => view.getFloat64(i * 8, true));
    case 'float16': return floats((i) => halfBitsToFloat(view.getUint16(i * 2, true)));
    case 'int8': return ints((i) => view.getInt8(i));
    case 'uint8': return ints((i) => view.getUint8(i));
    case 'bool': return ints((i) => (view.getUint8(i) !== 0 ? 1 : 0));
    case 'int16': return ints((i) => view.getInt16(i * 2, true));
    case 'uint16': return ints((i) => view.getUint16(i * 2, true));
    case 'int32': return ints((i) => view.getInt32(i * 4, true));
    case 'uint32': return ints((i) => Math.min(view.getUint32(i * 4, true), INT32_MAX));
    case 'int64': return ints((i) => saturateInt64(view.getUint32(i * 8, true), view.getInt32(i * 8 + 4, true)));
    case 'uint64': return ints((i) => (view.getUint32(i * 8 + 4, true) === 0
      ? Math.min(view.getUint32(i * 8, true), INT32_MAX) : INT32_MAX));
  }
}

function saturateInt64(low: number, high: number): number {
  if (high === 0 && low <= INT32_MAX) return low;
  if (high === -1 && low > INT32_MAX) return low | 0;
  return high < 0 ? INT32_MIN : INT32_MAX;
}

/**
 * Encodes a host tensor as .npy (version 1, or 2 for headers over 64 KiB). `outDtype` picks the file's
 * dtype (default: the tensor's; bfloat16 and int4/uint4, which NumPy lacks, are widened), so an int64 model
 * output held in an Int32Array is written as '<i8' and a bool as '|b1'.
 */
export function encodeNpy(tensor: Pick<Tensor, 'dtype' | 'dims' | 'data'>, outDtype?: DType): Uint8Array {
  const target = npyDTypeOf(outDtype ?? tensor.dtype);
  const count = elementCount(tensor.dims);
  if (tensor.data.length !== count) {
    throw new EdgerunError('EDGERUN_ERR_NPY',
      `cannot encode: shape (${tensor.dims.join(', ')}) has ${count} elements but the data holds ${tensor.data.length}`,
      { dims: tensor.dims });
  }
  const code = CODE_BY_DTYPE[target];
  const itemSize = Number(code.slice(1));
  const byteOrder = itemSize === 1 ? '|' : '<';
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  const dict = `{'descr': '${byteOrder}${code}', 'fortran_order': False, 'shape': ${shape}, }`;

  // NumPy pads the header with spaces so the data starts on a 64-byte boundary, and ends it with '\n'.
  const paddedLength = (prefix: number): number => Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix;
  const prefixLength = paddedLength(10) <= 0xffff ? 10 : 12;
  const headerLength = paddedLength(prefixLength);
  const header = dict.padEnd(headerLength - 1, ' ') + '\n';

  const out = new Uint8Array(prefixLength + headerLength + count * itemSize);
  const view = new DataView(out.buffer);
  out.set(MAGIC);
  out[6] = prefixLength === 10 ? 1 : 2;
  out[7] = 0;
  if (prefixLength === 10) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  for (let i = 0; i < header.length; i++) out[prefixLength + i] = header.charCodeAt(i);
  encodeData(new DataView(out.buffer, prefixLength + headerLength), tensor.data, isFloatDType(tensor.dtype), target);
  return out;
}

function encodeData(view: DataView, data: HostData, fromFloat: boolean, target: NpyDType): void {
  const n = data.length;
  // Float values written to an integer dtype truncate toward zero and saturate, like a checked cast.
  const integer = (i: number, min: number, max: number): number => {
    const value = fromFloat ? Math.trunc(data[i]) : data[i];
    return Number.isNaN(value) ? 0 : Math.min(Math.max(value, min), max);
  };
  switch (target) {
    case 'float32': for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i], true); return;
    case 'float64': for (let i = 0; i < n; i++) view.setFloat64(i * 8, data[i], true); return;
    case 'float16': for (let i = 0; i < n; i++) view.setUint16(i * 2, floatToHalfBits(data[i]), true); return;
    case 'bool': for (let i = 0; i < n; i++) view.setUint8(i, data[i] !== 0 ? 1 : 0); return;
    case 'int8': for (let i = 0; i < n; i++) view.setInt8(i, integer(i, -128, 127)); return;
    case 'uint8': for (let i = 0; i < n; i++) view.setUint8(i, integer(i, 0, 255)); return;
    case 'int16': for (let i = 0; i < n; i++) view.setInt16(i * 2, integer(i, -32768, 32767), true); return;
    case 'uint16': for (let i = 0; i < n; i++) view.setUint16(i * 2, integer(i, 0, 65535), true); return;
    case 'int32': for (let i = 0; i < n; i++) view.setInt32(i * 4, integer(i, INT32_MIN, INT32_MAX), true); return;
    case 'uint32': for (let i = 0; i < n; i++) view.setUint32(i * 4, integer(i, 0, 2 ** 32 - 1), true); return;
    case 'int64':
      for (let i = 0; i < n; i++) {
        const value = integer(i, INT32_MIN, INT32_MAX);
        view.setInt32(i * 8, value, true);
        view.setInt32(i * 8 + 4, value < 0 ? -1 : 0, true);
      }
      return;
    case 'uint64':
      for (let i = 0; i < n; i++) {
        view.setUint32(i * 8, integer(i, 0, 2 ** 32 - 1), true);
        view.setUint32(i * 8 + 4, 0, true);
      }
      return;
  }
}

export async function readNpyFile(filePath: string): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(filePath);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_IO', `${filePath}: cannot read the .npy file (${(error as Error).message})`,
      { file: filePath }, { cause: error });
  }
  return parseNpy(bytes, filePath);
}

/** Writes a .npy file so that readers never see a partial file: temp name, fsync, rename, fsync folder. */
export async function writeNpyFileAtomic(filePath: string, tensor: Pick<Tensor, 'dtype' | 'dims' | 'data'>,
  outDtype?: DType): Promise<void> {
  const bytes = encodeNpy(tensor, outDtype);
  const tempPath = path.join(path.dirname(filePath), `.${path.basename(filePath)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(tempPath, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tempPath, filePath);
    const folder = await fs.open(path.dirname(filePath), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch (error) {
    await fs.rm(tempPath, { force: true });
    if (isEdgerunError(error)) throw error;
    throw new EdgerunError('EDGERUN_ERR_IO', `${filePath}: cannot write the .npy file (${(error as Error).message})`,
      { file: filePath }, { cause: error });
  }
}
