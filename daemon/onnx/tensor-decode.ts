/**
 * TensorProto → host Tensor. Dims and sizes are checked against the caps and against the data actually
 * present before any output array is allocated.
 */
import onnxProto from 'onnx-proto';
import { EdgerunError } from '../errors.ts';
import type { DType, HostData, Tensor } from '../graph/ir.ts';
import { packedInt4Bytes, unpackInt4 } from '../quant/packing.ts';
import type { DecodeContext } from './decode-context.ts';
import { bfloat16BitsToFloat, halfBitsToFloat } from './half-float.ts';
import { elementTypeOf, onnxTypeName, protoIntToInt32, protoIntToNumber, saturateToInt32, type ProtoInt } from './proto-values.ts';

type TensorProto = onnxProto.onnx.ITensorProto;

const INT32_MAX = 2 ** 31 - 1;
const HOST_BYTES_PER_ELEMENT = 4;

/**
 * Validates a declared shape: rank and dims within the caps, no negative dims. `what` names the tensor or
 * value in errors (e.g. "initializer 'w'").
 */
export function checkDims(dims: readonly ProtoInt[], what: string, context: Record<string, unknown>,
  ctx: DecodeContext): number[] {
  if (dims.length > ctx.limits.maxRank) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: ${what} has rank ${dims.length}, over the cap of ${ctx.limits.maxRank}`, context);
  }
  return dims.map((raw) => {
    const dim = protoIntToNumber(raw);
    if (dim < 0) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: ${what} has negative dim ${dim}`, context);
    }
    if (dim > ctx.limits.maxDim) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
        `${ctx.source}: ${what} has dim ${dim}, over the cap of ${ctx.limits.maxDim}`, context);
    }
    return dim;
  });
}

/** Decodes a tensor; `what` names it in errors ("initializer 'w'", "attribute 'value' of node 'c'"). */
export function decodeTensor(proto: TensorProto, what: string, ctx: DecodeContext): Tensor {
  const tensorName = proto.name ?? '';
  const context = { file: ctx.source, tensor: tensorName || what };
  const invalid = (reason: string): never => {
    throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: ${what} ${reason}`, context);
  };

  const onnxType = proto.dataType ?? 0;
  const element = elementTypeOf(onnxType);
  if (element === undefined) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `${ctx.source}: ${what} has element type ${onnxTypeName(onnxType)}, which edgerun does not support`, context);
  }
  if (proto.segment) invalid('is a segmented tensor, which edgerun does not support');

  const dims = checkDims(proto.dims ?? [], what, context, ctx);
  const count = dims.reduce((a, b) => a * b, 1);
  const declaredBytes = Math.ceil(count * element.bytes);
  const heldBytes = Math.max(declaredBytes, count * HOST_BYTES_PER_ELEMENT);
  if (heldBytes > ctx.limits.maxTensorBytes) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: ${what} with dims [${dims.join(', ')}] needs ${heldBytes} bytes, over the per-tensor cap of ` +
      `${ctx.limits.maxTensorBytes}`, context);
  }
  if (ctx.totalTensorBytes + heldBytes > ctx.limits.maxTotalTensorBytes) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: ${what} brings the model's tensors to ${ctx.totalTensorBytes + heldBytes} bytes, over the cap of ` +
      `${ctx.limits.maxTotalTensorBytes}`, context);
  }

  let raw: Uint8Array | undefined;
  if (proto.dataLocation === onnxProto.onnx.TensorProto.DataLocation.EXTERNAL) {
    raw = ctx.externalData.read({ tensorName: tensorName || what, entries: proto.externalData ?? [], expectedBytes: declaredBytes });
  } else if (proto.rawData && proto.rawData.length > 0) {
    raw = proto.rawData;
    if (raw.length !== declaredBytes) {
      invalid(`with dims [${dims.join(', ')}] needs ${declaredBytes} bytes of ${element.dtype} data but raw_data holds ${raw.length}`);
    }
  }
  ctx.totalTensorBytes += heldBytes;

  if (raw !== undefined) return { dtype: element.dtype, dims, data: fromRawData(raw, element.dtype, count) };

  const field = typedField(proto, element.dtype);
  if (isInt4(element.dtype)) {
    // int32_data holds one byte per entry, two 4-bit elements per byte (low nibble first)
    if (field.values.length !== packedInt4Bytes(count)) {
      invalid(`with dims [${dims.join(', ')}] needs ${packedInt4Bytes(count)} packed ${element.dtype} bytes but ${field.name} holds ${field.values.length}`);
    }
    const bytes = Uint8Array.from(field.values, (v) => protoIntToInt32(v));
    if (bytes.some((b, i) => b !== protoIntToInt32(field.values[i]))) invalid(`holds an ${field.name} entry outside 0..255, not a packed ${element.dtype} byte`);
    return { dtype: element.dtype, dims, data: Int32Array.from(unpackInt4(bytes, count, element.dtype === 'int4')) };
  }
  if (field.values.length !== count) {
    invalid(`with dims [${dims.join(', ')}] needs ${count} elements but ${field.name} holds ${field.values.length}`);
  }
  return { dtype: element.dtype, dims, data: fromTypedField(field.values, element.dtype, count) };
}

interface TypedField {
  name: string;
  values: readonly ProtoInt[];
}

/** The TensorProto field the ONNX spec assigns to each element type when raw_data is absent. */
function typedField(proto: TensorProto, dtype: DType): TypedField {
  switch (dtype) {
    case 'float32': return { name: 'float_data', values: proto.floatData ?? [] };
    case 'float64': return { name: 'double_data', values: proto.doubleData ?? [] };
    case 'int64': return { name: 'int64_data', values: proto.int64Data ?? [] };
    case 'uint32': case 'uint64': return { name: 'uint64_data', values: proto.uint64Data ?? [] };
    default: return { name: 'int32_data', values: proto.int32Data ?? [] };
  }
}

function isInt4(dtype: DType): boolean {
  return dtype === 'int4' || dtype === 'uint4';
}

function fromTypedField(values: readonly ProtoInt[], dtype: DType, count: number): HostData {
  switch (dtype) {
    case 'float32': case 'float64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = values[i] as number;
      return out;
    }
    case 'float16': case 'bfloat16': {
      const toFloat = dtype === 'float16' ? halfBitsToFloat : bfloat16BitsToFloat;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = toFloat((values[i] as number) & 0xffff);
      return out;
    }
    case 'uint32': case 'uint64': {
      // uint64_data holds unsigned values: read the Long as unsigned so the top bit does not flip the sign.
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = saturateToInt32(unsignedProtoInt(values[i]));
      return out;
    }
    case 'bool': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = (values[i] as number) !== 0 ? 1 : 0;
      return out;
    }
    default: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = protoIntToInt32(values[i]);
      return out;
    }
  }
}

function unsignedProtoInt(value: ProtoInt): number {
  if (value === null || value === undefined || typeof value === 'number') return value ?? 0;
  return (value.high >>> 0) * 2 ** 32 + (value.low >>> 0);
}

/** Decodes little-endian raw_data; `raw.length` has already been checked against `count`. */
function fromRawData(raw: Uint8Array, dtype: DType, count: number): HostData {
  if (dtype === 'float32' || dtype === 'int32') {
    // One aligned copy, then reinterpret (every platform Node supports is little-endian).
    const copy = new Uint8Array(count * 4);
    copy.set(raw);
    return dtype === 'float32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'float64': return fill(new Float32Array(count), (i) => view.getFloat64(i * 8, true));
    case 'float16': return fill(new Float32Array(count), (i) => halfBitsToFloat(view.getUint16(i * 2, true)));
    case 'bfloat16': return fill(new Float32Array(count), (i) => bfloat16BitsToFloat(view.getUint16(i * 2, true)));
    case 'int4': case 'uint4': return Int32Array.from(unpackInt4(raw, count, dtype === 'int4'));
    case 'int8': return fill(new Int32Array(count), (i) => view.getInt8(i));
    case 'uint8': return fill(new Int32Array(count), (i) => view.getUint8(i));
    case 'bool': return fill(new Int32Array(count), (i) => (view.getUint8(i) !== 0 ? 1 : 0));
    case 'int16': return fill(new Int32Array(count), (i) => view.getInt16(i * 2, true));
    case 'uint16': return fill(new Int32Array(count), (i) => view.getUint16(i * 2, true));
    case 'uint32': return fill(new Int32Array(count), (i) => Math.min(view.getUint32(i * 4, true), INT32_MAX));
    case 'int64': return fill(new Int32Array(count), (i) => saturateInt64(view.getUint32(i * 8, true), view.getInt32(i * 8 + 4, true)));
    case 'uint64': return fill(new Int32Array(count), (i) => (view.getUint32(i * 8 + 4, true) === 0
      ? Math.min(view.getUint32(i * 8, true), INT32_MAX) : INT32_MAX));
    default: return exhaustive(dtype);
  }
}

/** Saturates a little-endian int64 given as (unsigned low word, signed high word) into int32. */
function saturateInt64(low: number, high: number): number {
  if (high === 0 && low <= INT32_MAX) return low;
  if (high === -1 && low > INT32_MAX) return low | 0;
  return high < 0 ? -(2 ** 31) : INT32_MAX;
}

function exhaustive(dtype: never): never {
  throw new Error(`raw decoding has no case for ${String(dtype)}`);
}

function fill<T extends HostData>(out: T, at: (i: number) => number): T {
  for (let i = 0; i < out.length; i++) out[i] = at(i);
  return out;
}
