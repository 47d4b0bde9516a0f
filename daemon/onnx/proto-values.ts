/**
 * Conversions from protobufjs wire values: 64-bit integers arrive as Long objects (or plain numbers when
 * protobufjs has no Long implementation), ONNX element types arrive as enum numbers.
 */
import type { DType } from '../graph/ir.ts';

export interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
}

export type ProtoInt = number | LongLike | null | undefined;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * The value as a double: exact while |value| < 2^53, and order-preserving beyond, which is all the caps
 * need (anything that large is rejected anyway).
 */
export function protoIntToNumber(value: ProtoInt): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  const low = value.low >>> 0;
  const high = value.unsigned ? value.high >>> 0 : value.high | 0;
  return high * 2 ** 32 + low;
}

export function saturateToInt32(value: number): number {
  if (Number.isNaN(value)) return 0;
  if (value <= INT32_MIN) return INT32_MIN;
  if (value >= INT32_MAX) return INT32_MAX;
  return Math.trunc(value);
}

export function protoIntToInt32(value: ProtoInt): number {
  return saturateToInt32(protoIntToNumber(value));
}

/** ONNX TensorProto.DataType numbers, including the newer ones onnx-proto 8 has no names for. */
export const OnnxDataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  UINT4: 21, INT4: 22,
} as const;

interface ElementType {
  dtype: DType;
  /** Bytes per element in raw_data (little-endian); 0.5 for the 4-bit types (two per byte, see quant/packing.ts). */
  bytes: number;
}

const ELEMENT_TYPES = new Map<number, ElementType>([
  [OnnxDataType.FLOAT, { dtype: 'float32', bytes: 4 }],
  [OnnxDataType.UINT8, { dtype: 'uint8', bytes: 1 }],
  [OnnxDataType.INT8, { dtype: 'int8', bytes: 1 }],
  [OnnxDataType.UINT16, { dtype: 'uint16', bytes: 2 }],
  [OnnxDataType.INT16, { dtype: 'int16', bytes: 2 }],
  [OnnxDataType.INT32, { dtype: 'int32', bytes: 4 }],
  [OnnxDataType.INT64, { dtype: 'int64', bytes: 8 }],
  [OnnxDataType.BOOL, { dtype: 'bool', bytes: 1 }],
  [OnnxDataType.FLOAT16, { dtype: 'float16', bytes: 2 }],
  [OnnxDataType.DOUBLE, { dtype: 'float64', bytes: 8 }],
  [OnnxDataType.UINT32, { dtype: 'uint32', bytes: 4 }],
  [OnnxDataType.UINT64, { dtype: 'uint64', bytes: 8 }],
  [OnnxDataType.BFLOAT16, { dtype: 'bfloat16', bytes: 2 }],
  [OnnxDataType.UINT4, { dtype: 'uint4', bytes: 0.5 }],
  [OnnxDataType.INT4, { dtype: 'int4', bytes: 0.5 }],
]);

const UNSUPPORTED_NAMES = new Map<number, string>([
  [OnnxDataType.UNDEFINED, 'undefined'],
  [OnnxDataType.STRING, 'string'],
  [OnnxDataType.COMPLEX64, 'complex64'],
  [OnnxDataType.COMPLEX128, 'complex128'],
  [17, 'float8e4m3fn'], [18, 'float8e4m3fnuz'], [19, 'float8e5m2'], [20, 'float8e5m2fnuz'],
  [23, 'float4e2m1'],
]);

/** The element type for an ONNX data type number, or undefined when edgerun cannot hold it. */
export function elementTypeOf(onnxType: number): ElementType | undefined {
  return ELEMENT_TYPES.get(onnxType);
}

export function onnxTypeName(onnxType: number): string {
  return ELEMENT_TYPES.get(onnxType)?.dtype ?? UNSUPPORTED_NAMES.get(onnxType) ?? `unknown(${onnxType})`;
}

const ONNX_TYPE_BY_DTYPE: Record<DType, number> = {
  float32: OnnxDataType.FLOAT, float16: OnnxDataType.FLOAT16, float64: OnnxDataType.DOUBLE,
  bfloat16: OnnxDataType.BFLOAT16, int8: OnnxDataType.INT8, uint8: OnnxDataType.UINT8,
  int16: OnnxDataType.INT16, uint16: OnnxDataType.UINT16, int32: OnnxDataType.INT32,
  uint32: OnnxDataType.UINT32, int64: OnnxDataType.INT64, uint64: OnnxDataType.UINT64, bool: OnnxDataType.BOOL,
  int4: OnnxDataType.INT4, uint4: OnnxDataType.UINT4,
};

/** The ONNX data type number for a DType (the inverse of elementTypeOf). */
export function onnxTypeOf(dtype: DType): number {
  return ONNX_TYPE_BY_DTYPE[dtype];
}
