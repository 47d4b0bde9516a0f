/**
 * Tensor data in and out of HTTP bodies: JSON arrays (flat or nested, row-major) and the binary tensor data
 * extension (raw little-endian elements). Every value is checked against its datatype before it reaches the
 * engine; errors name the field (e.g. `inputs[1].data`).
 */
import { EdgerunError } from '../errors.ts';
import type { HostData, Tensor } from '../graph/ir.ts';
import { bfloat16BitsToFloat, floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';
import { ELEMENT_BYTES, INTEGER_RANGE, isFloatDatatype, type Datatype } from './datatypes.ts';

/** Deeper nesting than any tensor rank a model declares is refused before recursion can hurt. */
const MAX_NESTING = 32;
const FP16_LIMIT = 65520; // values at or beyond this magnitude round to infinity in float16

function requestError(message: string, field: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_REQUEST', message, { field });
}

/** Leaves of nested JSON arrays, counting only up to `limit + 1` so huge claims stay cheap. */
export function countJsonElements(field: string, data: unknown, limit: number): number {
  let count = 0;
  const walk = (value: unknown, depth: number): void => {
    if (count > limit) return;
    if (!Array.isArray(value)) {
      count++;
      return;
    }
    if (depth >= MAX_NESTING) throw requestError(`${field} is nested deeper than ${MAX_NESTING} levels`, field);
    for (const item of value) walk(item, depth + 1);
  };
  if (!Array.isArray(data)) throw requestError(`${field} must be an array of tensor elements`, field);
  walk(data, 0);
  return count;
}

function elementWriter(field: string, datatype: Datatype, out: HostData): (value: unknown, index: number) => void {
  const bad = (index: number, value: unknown, expected: string): EdgerunError =>
    requestError(`${field}[${index}] must be ${expected} for ${datatype}, got ${JSON.stringify(value) ?? typeof value}`, field);
  if (datatype === 'BOOL') {
    return (value, index) => {
      if (typeof value !== 'boolean') throw bad(index, value, 'true or false');
      out[index] = value ? 1 : 0;
    };
  }
  if (isFloatDatatype(datatype)) {
    const limit = datatype === 'FP16' ? FP16_LIMIT : Infinity;
    return (value, index) => {
      if (typeof value !== 'number') throw bad(index, value, 'a number');
      const stored = Math.fround(value);
      if (!Number.isFinite(stored) || Math.abs(value) >= limit) {
        throw requestError(`${field}[${index}]: ${value} overflows ${datatype === 'FP64' ? 'FP32, the precision edgerun computes FP64 inputs in' : datatype}`, field);
      }
      out[index] = stored;
    };
  }
  const range = INTEGER_RANGE[datatype];
  if (!range) throw requestError(`${field}: datatype ${datatype} is not supported`, field);
  const [min, max] = range;
  return (value, index) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw bad(index, value, 'an integer');
    if (value < min || value > max) {
      throw requestError(`${field}[${index}]: ${value} is outside the range edgerun holds ${datatype} values in (${min}..${max})`, field);
    }
    out[index] = value;
  };
}

/** JSON tensor data (flat or nested) as IR storage of exactly `count` elements. */
export function decodeJsonTensor(field: string, datatype: Datatype, data: unknown, count: number): HostData {
  const found = countJsonElements(field, data, count);
  if (found !== count) {
    throw requestError(`${field} has ${found > count ? `more than ${count}` : found} elements but the shape needs ${count}`, field);
  }
  const out: HostData = isFloatDatatype(datatype) ? new Float32Array(count) : new Int32Array(count);
  const write = elementWriter(field, datatype, out);
  let index = 0;
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) walk(item);
    else write(value, index++);
  };
  walk(data);
  return out;
}

/** Binary tensor data (little-endian, row-major) as IR storage. `bytes` holds exactly count × element size. */
export function decodeBinaryTensor(field: string, datatype: Datatype, bytes: Uint8Array, count: number): HostData {
  if (datatype === 'BYTES') throw requestError(`${field}: datatype BYTES is not supported`, field);
  // Copy into a fresh, aligned buffer: request bodies are pooled Buffers at arbitrary offsets.
  const aligned = new ArrayBuffer(count * ELEMENT_BYTES[datatype]);
  new Uint8Array(aligned).set(bytes);
  switch (datatype) {
    case 'FP32': return new Float32Array(aligned);
    case 'FP64': return Float32Array.from(new Float64Array(aligned));
    case 'FP16': return Float32Array.from(new Uint16Array(aligned), halfBitsToFloat);
    case 'BF16': return Float32Array.from(new Uint16Array(aligned), bfloat16BitsToFloat);
    case 'BOOL': return Int32Array.from(new Uint8Array(aligned), (v) => (v !== 0 ? 1 : 0));
    case 'INT8': return Int32Array.from(new Int8Array(aligned));
    case 'UINT8': return Int32Array.from(new Uint8Array(aligned));
    case 'INT16': return Int32Array.from(new Int16Array(aligned));
    case 'UINT16': return Int32Array.from(new Uint16Array(aligned));
    case 'INT32': return new Int32Array(aligned);
    default: {
      const wide = datatype === 'INT64' ? new BigInt64Array(aligned) : datatype === 'UINT64' ? new BigUint64Array(aligned) : new Uint32Array(aligned);
      const [min, max] = INTEGER_RANGE[datatype]!;
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const value = Number(wide[i]);
        if (value < min || value > max) {
          throw requestError(`${field} element ${i}: ${wide[i]} is outside the range edgerun holds ${datatype} values in (${min}..${max})`, field);
        }
        out[i] = value;
      }
      return out;
    }
  }
}

/** An output tensor as JSON data (flat, row-major). Non-finite floats become null: JSON has no NaN or Infinity. */
export function encodeJsonTensor(datatype: Datatype, tensor: Tensor): (number | boolean | null)[] {
  if (datatype === 'BOOL') return Array.from(tensor.data, (v) => v !== 0);
  return Array.from(tensor.data);
}

/** Round to nearest even on the upper 16 bits of each float32, as bfloat16 casts do; NaN stays NaN. */
function toBfloat16Bits(data: HostData): Uint16Array {
  const words = new Uint32Array(Float32Array.from(data).buffer);
  return Uint16Array.from(words, (word) => {
    if ((word & 0x7f800000) === 0x7f800000 && (word & 0x7fffff) !== 0) return (word >>> 16) | 0x40;
    return Math.floor((word + 0x7fff + ((word >>> 16) & 1)) / 65536) & 0xffff;
  });
}

/** An output tensor in the binary tensor data extension's layout. */
export function encodeBinaryTensor(datatype: Datatype, tensor: Tensor): Uint8Array {
  const { data } = tensor;
  const bytes = (view: ArrayBufferView): Uint8Array => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  switch (datatype) {
    case 'FP32': return bytes(data instanceof Float32Array ? data : Float32Array.from(data));
    case 'FP64': return bytes(Float64Array.from(data));
    case 'FP16': return bytes(Uint16Array.from(data, floatToHalfBits));
    case 'BF16': return bytes(toBfloat16Bits(data));
    case 'BOOL': return Uint8Array.from(data, (v) => (v !== 0 ? 1 : 0));
    case 'INT8': return bytes(Int8Array.from(data));
    case 'UINT8': return Uint8Array.from(data);
    case 'INT16': return bytes(Int16Array.from(data));
    case 'UINT16': return bytes(Uint16Array.from(data));
    case 'INT32': return bytes(data instanceof Int32Array ? data : Int32Array.from(data));
    case 'UINT32': return bytes(Uint32Array.from(data));
    case 'INT64': return bytes(BigInt64Array.from(data, (v) => BigInt(v)));
    case 'UINT64': return bytes(BigUint64Array.from(data, (v) => BigInt(Math.max(0, v))));
    case 'BYTES': throw new EdgerunError('EDGERUN_ERR_REQUEST', 'BYTES outputs are not supported', {});
  }
}
