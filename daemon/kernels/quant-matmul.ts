/**
 * The quantized operator family: ONNX Q/DQ ops and integer matmul, and the fused packed-weight matmuls
 * (edgerun.QMatMul, com.microsoft.MatMulNBits) made from them by graph/fuse-dequant.ts.
 */
import { ops as quantLinearOps } from './quant-linear.ts';
import { ops as matmulIntegerOps } from './quant-matmul-integer.ts';
import type { OpDefinition } from './types.ts';

export const ops: OpDefinition[] = [...quantLinearOps, ...matmulIntegerOps];
