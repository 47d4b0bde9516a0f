/**
 * com.microsoft.MatMulNBits (bits 4): Y = A · dequant(B)ᵀ-layout weights, B given as [N, blocks, blockSize/2]
 * uint8 (per output column, the K values of each block, low nibble first — see quant/packing.ts), scales
 * [N·blocks] (or [N, blocks]), optional zero points packed two per byte ([N·ceil(blocks/2)]), default zero 8,
 * optional bias [N]. g_idx (act-order) and float zero points are not supported.
 *
 * The runtime turns it into the DequantizeLinear form of edgerun.QMatMul: q [K, N] int4/uint4, scale and zero
 * point [blocks, N], blocked along axis 0.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, makeTensor, type Tensor, type TensorType } from '../graph/ir.ts';
import { unpackInt4 } from '../quant/packing.ts';
import { quantError, requireFloatInput, requireInput } from './quant-params.ts';
import type { OpContext } from './types.ts';

export interface NBitsShape {
  K: number;
  N: number;
  blockSize: number;
  blocks: number;
  outputShape: number[];
  hasZeroPoints: boolean;
  hasBias: boolean;
}

/** Validates MatMulNBits' attributes and weight inputs (B, scales, zero points, g_idx, bias); A is not looked at. */
export function nbitsWeights(ctx: OpContext): Omit<NBitsShape, 'outputShape'> {
  const attrs = new Attributes(ctx.node);
  const K = attrs.int('K');
  const N = attrs.int('N');
  const bits = attrs.int('bits', 4);
  const blockSize = attrs.int('block_size');
  if (bits !== 4) throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `bits=${bits}: only 4-bit MatMulNBits is supported`, { bits });
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `block_size ${blockSize} must be a power of two >= 16`, { blockSize });
  }
  if (!(K > 0 && N > 0)) throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `K=${K} and N=${N} must be positive`, { K, N });
  const blocks = Math.ceil(K / blockSize);
  const b = requireInput(ctx, 1, 'B');
  const scales = requireFloatInput(ctx, 2, 'scales');
  const blob = blockSize / 2;
  if (b.dtype !== 'uint8' || elementCount(b.shape) !== N * blocks * blob) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `B must be uint8 [${N}, ${blocks}, ${blob}], got ${b.dtype} [${b.shape}]`, { bShape: b.shape });
  }
  if (elementCount(scales.shape) !== N * blocks) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `scales [${scales.shape}] must hold N·blocks = ${N * blocks} values`, { scaleShape: scales.shape });
  }
  const zeroPoints = ctx.inputs[3] ?? null;
  if (zeroPoints) {
    if (zeroPoints.dtype !== 'uint8') throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `zero_points of type ${zeroPoints.dtype}: only packed uint8 zero points are supported`, { dtype: zeroPoints.dtype });
    if (elementCount(zeroPoints.shape) !== N * Math.ceil(blocks / 2)) {
      throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `zero_points [${zeroPoints.shape}] must hold N·ceil(blocks/2) = ${N * Math.ceil(blocks / 2)} bytes`, { zeroPointShape: zeroPoints.shape });
    }
  }
  if (ctx.inputs[4]) throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', 'g_idx (act-order) is not supported');
  const bias: TensorType | null = ctx.inputs[5] ?? null;
  if (bias && (elementCount(bias.shape) !== N)) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `bias [${bias.shape}] must hold N=${N} values`, { biasShape: bias.shape });
  return { K, N, blockSize, blocks, hasZeroPoints: !!zeroPoints, hasBias: !!bias };
}

export function nbitsShape(ctx: OpContext): NBitsShape {
  const weights = nbitsWeights(ctx);
  const a = requireFloatInput(ctx, 0, 'A');
  if (a.shape.length === 0 || a.shape[a.shape.length - 1] !== weights.K) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `A [${a.shape}] must end in K=${weights.K}`, { aShape: a.shape });
  }
  return { ...weights, outputShape: [...a.shape.slice(0, -1), weights.N] };
}

export interface NBitsAsQuantized {
  /** [K, N]: int4 (value - 8) without zero points, uint4 with them. */
  q: Tensor;
  /** [blocks, N]. */
  scale: Tensor;
  zeroPoint: Tensor | null;
  blockSize: number;
}

/** Unpacks MatMulNBits' constant B, scales and zero points into the [K, N] DequantizeLinear form. */
export function nbitsToQuantized(shape: Omit<NBitsShape, 'outputShape'>, b: Tensor, scales: Tensor, zeroPoints: Tensor | null): NBitsAsQuantized {
  const { K, N, blockSize, blocks } = shape;
  const blob = blockSize / 2;
  const bytes = Uint8Array.from(b.data);
  const signed = !zeroPoints;
  const q = makeTensor(signed ? 'int4' : 'uint4', [K, N]);
  for (let n = 0; n < N; n++) {
    const column = unpackInt4(bytes.subarray(n * blocks * blob, (n + 1) * blocks * blob), blocks * blockSize, false);
    for (let k = 0; k < K; k++) q.data[k * N + n] = signed ? column[k] - 8 : column[k];
  }
  const scale = makeTensor('float32', [blocks, N]);
  for (let n = 0; n < N; n++) for (let blk = 0; blk < blocks; blk++) scale.data[blk * N + n] = scales.data[n * blocks + blk];
  let zeroPoint: Tensor | null = null;
  if (zeroPoints) {
    const perColumn = Math.ceil(blocks / 2);
    const zpBytes = Uint8Array.from(zeroPoints.data);
    zeroPoint = makeTensor('uint4', [blocks, N]);
    for (let n = 0; n < N; n++) {
      const column = unpackInt4(zpBytes.subarray(n * perColumn, (n + 1) * perColumn), blocks, false);
      for (let blk = 0; blk < blocks; blk++) zeroPoint.data[blk * N + n] = column[blk];
    }
  }
  return { q, scale, zeroPoint, blockSize };
}
