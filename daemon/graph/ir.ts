/**
 * The graph IR every stage after ONNX decoding works on.
 *
 * Host tensors keep one storage type per dtype family so that constant folding stays simple:
 * floating-point dtypes live in a Float32Array, every integer dtype and bool in an Int32Array
 * (int64 values are saturated to the int32 range when decoded; shapes, axes and indices always fit,
 * and out-of-range Slice bounds such as INT64_MAX keep their meaning after clamping).
 * On the GPU every element is 4 bytes: f32 for floats, i32 for integers, u32 0/1 for bool — except the
 * quantized weights that the fused kernels read packed (daemon/quant/packing.ts owns that layout).
 * int4/uint4 (ONNX 22/21) are held unpacked on the host like every other integer dtype.
 */
export type DType =
  | 'float32' | 'float16' | 'float64' | 'bfloat16'
  | 'int4' | 'uint4' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool';

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);

export function isFloatDType(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

export type HostData = Float32Array | Int32Array;

export interface Tensor {
  dtype: DType;
  dims: number[];
  /** Float32Array for float dtypes, Int32Array for integer dtypes and bool. Row-major. */
  data: HostData;
}

/** A static tensor type after shape inference: every dim is a concrete non-negative integer. */
export interface TensorType {
  dtype: DType;
  shape: number[];
}

/** A declared dim: a number, a symbolic name (dim_param), or null when unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  dtype: DType;
  /** null when the model declares no shape at all. */
  dims: Dim[] | null;
}

export type AttributeValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph };

export interface Node {
  /** Unique within the graph (the loader names unnamed nodes `<opType>_<index>`). */
  name: string;
  opType: string;
  /** '' for the default ai.onnx domain; 'edgerun' for nodes made by fusion passes. */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Map<string, AttributeValue>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  /** Real inputs only (initializers that are also listed as inputs are removed from here). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Tensor>;
}

export interface Model {
  irVersion: number;
  producer: string;
  /** domain ('' for ai.onnx) → opset version. */
  opsets: Map<string, number>;
  graph: Graph;
}

export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const d of shape) count *= d;
  return count;
}

export function makeTensor(dtype: DType, dims: number[], data?: HostData): Tensor {
  const count = elementCount(dims);
  const storage = data ?? (isFloatDType(dtype) ? new Float32Array(count) : new Int32Array(count));
  return { dtype, dims, data: storage };
}
