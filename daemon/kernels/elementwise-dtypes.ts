/** DType rules and node-naming errors shared by the elementwise, shape and data-movement ops. */
import { EdgerunError, type ErrorCode } from '../errors.ts';
import { isFloatDType, type DType, type Node } from '../graph/ir.ts';

/** ONNX TensorProto.DataType numbers the runtime can hold (string, complex, float8 and int4 cannot). */
const ONNX_DTYPES: Record<number, DType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

export function dtypeFromOnnx(code: number, node: Node, attribute: string): DType {
  const dtype = ONNX_DTYPES[code];
  if (!dtype) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `node '${node.name}' (${node.opType}) attribute '${attribute}' names element type ${code}, which the runtime does not support`,
      { node: node.name, opType: node.opType, attribute, value: code });
  }
  return dtype;
}

/** The ONNX TensorProto.DataType number of a dtype. */
export function onnxDTypeCode(dtype: DType): number {
  return Number(Object.entries(ONNX_DTYPES).find(([, d]) => d === dtype)![0]);
}

export type DTypeClass = 'float' | 'numeric' | 'bool' | 'integer' | 'any';

export function dtypeIn(dtype: DType, allowed: DTypeClass): boolean {
  switch (allowed) {
    case 'float': return isFloatDType(dtype);
    case 'numeric': return dtype !== 'bool';
    case 'integer': return dtype !== 'bool' && !isFloatDType(dtype);
    case 'bool': return dtype === 'bool';
    default: return true;
  }
}

/** EDGERUN_ERR_SHAPE naming the node and input unless `dtype` belongs to `allowed`. */
export function requireDType(node: Node, inputIndex: number, dtype: DType, allowed: DTypeClass): void {
  if (dtypeIn(dtype, allowed)) return;
  throw new EdgerunError('EDGERUN_ERR_SHAPE',
    `node '${node.name}' (${node.opType}) input ${inputIndex} ('${node.inputs[inputIndex]}') has dtype ${dtype}, expected ${allowed === 'any' ? 'any' : `a ${allowed}`} type`,
    { node: node.name, opType: node.opType, input: node.inputs[inputIndex], dtype });
}

/** EDGERUN_ERR_SHAPE unless inputs `indices` share one dtype. */
export function requireSameDType(node: Node, dtypes: (DType | undefined)[], indices: number[]): void {
  const first = dtypes[indices[0]];
  for (const index of indices) {
    const dtype = dtypes[index];
    if (dtype !== undefined && dtype !== first) {
      throw new EdgerunError('EDGERUN_ERR_SHAPE',
        `node '${node.name}' (${node.opType}) input ${index} ('${node.inputs[index]}') has dtype ${dtype} but input ${indices[0]} has ${first}`,
        { node: node.name, opType: node.opType, input: node.inputs[index] });
    }
  }
}

/** An EdgerunError whose message starts with the node's name and op. */
export function nodeError(code: ErrorCode, node: Node, message: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError(code, `node '${node.name}' (${node.opType}): ${message}`, { node: node.name, opType: node.opType, ...context });
}
