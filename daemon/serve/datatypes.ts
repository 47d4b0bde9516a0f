/**
 * Open Inference Protocol tensor datatypes (FP32, INT64, BOOL, …) and how edgerun holds them: the IR keeps
 * floats in Float32Array and every integer dtype and bool in Int32Array, so integer values must fit int32.
 */
import type { Dim, DType } from '../graph/ir.ts';

export type Datatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64'
  | 'FP16' | 'FP32' | 'FP64' | 'BF16' | 'BYTES';

const DATATYPE_OF_DTYPE: Record<DType, Datatype> = {
  float32: 'FP32', float16: 'FP16', float64: 'FP64', bfloat16: 'BF16',
  int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16', int32: 'INT32', uint32: 'UINT32',
  int64: 'INT64', uint64: 'UINT64', bool: 'BOOL',
  // the protocol has no 4-bit datatypes: such values travel widened
  int4: 'INT8', uint4: 'UINT8',
};

export const DATATYPES: readonly Datatype[] = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BF16', 'BYTES',
];

/** Bytes per element in the binary tensor data extension (BYTES is length-prefixed and has none). */
export const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, BF16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8,
};

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;

/** The integer values an IR tensor of this datatype can hold; null for float and bool datatypes. */
export const INTEGER_RANGE: Partial<Record<Datatype, readonly [number, number]>> = {
  INT8: [-128, 127], UINT8: [0, 255], INT16: [-32768, 32767], UINT16: [0, 65535],
  INT32: [INT32_MIN, INT32_MAX], UINT32: [0, INT32_MAX], INT64: [INT32_MIN, INT32_MAX], UINT64: [0, INT32_MAX],
};

export function datatypeOf(dtype: DType): Datatype {
  return DATATYPE_OF_DTYPE[dtype];
}

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && (DATATYPES as readonly string[]).includes(value);
}

export function isFloatDatatype(datatype: Datatype): boolean {
  return datatype === 'FP32' || datatype === 'FP16' || datatype === 'FP64' || datatype === 'BF16';
}

/** A declared shape as the protocol writes it: -1 for every dynamic or unknown dim. */
export function protocolShape(dims: Dim[] | null): number[] {
  return (dims ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}
