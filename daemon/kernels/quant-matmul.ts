/**
 * The quantized operator family: ONNX Q/DQ ops and integer matmul, and the fused packed-weight matmuls
 * edgerun.QMatMul (made by graph/fuse-dequant.ts from DequantizeLinear → MatMul/Gemm and from MatMulNBits)
 * and com.microsoft.MatMulNBits itself (for graphs compiled without fusion).
 *
 * edgerun.QMatMul — inputs: 0 A [..., K] float; 1 B [K, N] int8|uint8|int4|uint4 (constant); 2 scale (float
 * constant: [] per tensor, [N] per column with axis 1, or [ceil(K/block_size), N] blocked along axis 0);
 * 3 zero point (constant of B's dtype, the scale's dims) or ''; 4 bias [N] (float constant) or absent.
 * Attributes: axis, block_size (0 unless blocked). Y [..., N] = A · ((B - zero point) · scale) + bias.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, makeTensor, type Tensor, type TensorType } from '../graph/ir.ts';
import { dequantizeHost, ops as quantLinearOps } from './quant-linear.ts';
import { ops as matmulIntegerOps } from './quant-matmul-integer.ts';
import { qmatmulProgram } from './quant-matmul-wgsl.ts';
import { nbitsShape, nbitsToQuantized } from './quant-nbits.ts';
import { quantError, quantLayout, requireFloatInput, requireInput, type QuantLayout } from './quant-params.ts';
import { bitsOf, packMatmulWeights } from './quant-weights.ts';
import type { BuildContext, OpContext, OpDefinition } from './types.ts';

interface QMatMulTypes {
  a: TensorType;
  K: number;
  N: number;
  layout: QuantLayout;
  outputShape: number[];
}

function qmatmulTypes(ctx: OpContext): QMatMulTypes {
  const a = requireFloatInput(ctx, 0, 'A');
  const b = requireInput(ctx, 1, 'B');
  if (bitsOf(b.dtype) === null) throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `B is ${b.dtype}; QMatMul takes int4, uint4, int8 or uint8 weights`, { dtype: b.dtype });
  if (b.shape.length !== 2) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `B must be 2-D [K, N], got [${b.shape}]`, { bShape: b.shape });
  const scale = requireFloatInput(ctx, 2, 'scale');
  const zeroPoint = ctx.inputs[3] ?? null;
  if (zeroPoint && zeroPoint.dtype !== b.dtype) {
    throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `zero point is ${zeroPoint.dtype} but B is ${b.dtype}: they must have the same type`, { dtype: zeroPoint.dtype });
  }
  const attrs = new Attributes(ctx.node);
  const layout = quantLayout(ctx, b.shape, scale, zeroPoint, { axis: attrs.int('axis', 1), blockSize: attrs.int('block_size', 0) });
  if ((layout.kind === 'axis' && layout.axis !== 1) || (layout.kind === 'block' && layout.axis !== 0)) {
    throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `${layout.kind} scales along axis ${layout.axis}: QMatMul takes per-column (axis 1) or K-blocked (axis 0) scales`, { axis: layout.axis });
  }
  const [K, N] = b.shape;
  if (a.shape.length === 0 || a.shape[a.shape.length - 1] !== K) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `A [${a.shape}] must end in K=${K}`, { aShape: a.shape });
  const bias = ctx.inputs[4] ?? null;
  if (bias && elementCount(bias.shape) !== N) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `bias [${bias.shape}] must hold N=${N} values`, { biasShape: bias.shape });
  return { a, K, N, layout, outputShape: [...a.shape.slice(0, -1), N] };
}

/** A [..., K] · W [K, N] (+ bias) on the host, for folding. */
function hostMatmul(a: Tensor, w: Float32Array, K: number, N: number, bias: Tensor | null, outputShape: number[]): Tensor {
  const out = makeTensor(a.dtype, outputShape);
  const rows = elementCount(a.dims) / K;
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a.data[m * K + k] * w[k * N + n];
      out.data[m * N + n] = acc + (bias ? bias.data[n] : 0);
    }
  }
  return out;
}

function requireConstant(ctx: OpContext, index: number, what: string): Tensor {
  const constant = ctx.constants[index];
  if (!constant) throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `${what} (input ${index}) must be a constant`, { input: index });
  return constant;
}

const qmatmul: OpDefinition = {
  opType: 'QMatMul',
  domain: 'edgerun',
  infer(ctx) {
    const types = qmatmulTypes(ctx);
    return [{ dtype: types.a.dtype, shape: types.outputShape }];
  },
  fold(ctx, inputs) {
    const { K, N, layout, outputShape } = qmatmulTypes(ctx);
    const w = dequantizeHost(inputs[1]!, inputs[2]!, inputs[3] ?? null, layout, 'float32');
    return [hostMatmul(inputs[0]!, w.data as Float32Array, K, N, inputs[4] ?? null, outputShape)];
  },
  build(ctx: BuildContext) {
    const { a, K, layout } = qmatmulTypes(ctx);
    const weights = packMatmulWeights(requireConstant(ctx, 1, 'B'), requireConstant(ctx, 2, 'scale'),
      ctx.inputs[3] ? requireConstant(ctx, 3, 'zero point') : null, layout);
    const bias = ctx.inputs[4] ? Float32Array.from(requireConstant(ctx, 4, 'bias').data) : null;
    const M = elementCount(a.shape) / K;
    if (M === 0) return [];
    return [qmatmulProgram({ node: ctx.node.name, opType: 'QMatMul', M, weights, bias, epilogue: ctx.epilogue }, ctx.device)];
  },
};

const matMulNBits: OpDefinition = {
  opType: 'MatMulNBits',
  domain: 'com.microsoft',
  infer(ctx) {
    return [{ dtype: ctx.inputs[0]!.dtype, shape: nbitsShape(ctx).outputShape }];
  },
  fold(ctx, inputs) {
    const shape = nbitsShape(ctx);
    const quantized = nbitsToQuantized(shape, inputs[1]!, inputs[2]!, inputs[3] ?? null);
    const layout: QuantLayout = { kind: 'block', axis: 0, blockSize: shape.blockSize, axisSize: shape.K, scaleAxisSize: shape.blocks, inner: shape.N };
    const w = dequantizeHost(quantized.q, quantized.scale, quantized.zeroPoint, layout, 'float32');
    return [hostMatmul(inputs[0]!, w.data as Float32Array, shape.K, shape.N, inputs[5] ?? null, shape.outputShape)];
  },
  build(ctx: BuildContext) {
    const shape = nbitsShape(ctx);
    const quantized = nbitsToQuantized(shape, requireConstant(ctx, 1, 'B'), requireConstant(ctx, 2, 'scales'),
      ctx.inputs[3] ? requireConstant(ctx, 3, 'zero_points') : null);
    const layout: QuantLayout = { kind: 'block', axis: 0, blockSize: shape.blockSize, axisSize: shape.K, scaleAxisSize: shape.blocks, inner: shape.N };
    const weights = packMatmulWeights(quantized.q, quantized.scale, quantized.zeroPoint, layout);
    const bias = ctx.inputs[5] ? Float32Array.from(requireConstant(ctx, 5, 'bias').data) : null;
    const M = elementCount(ctx.inputs[0]!.shape) / shape.K;
    if (M === 0) return [];
    return [qmatmulProgram({ node: ctx.node.name, opType: 'MatMulNBits', M, weights, bias, epilogue: ctx.epilogue }, ctx.device)];
  },
};

export const ops: OpDefinition[] = [...quantLinearOps, ...matmulIntegerOps, qmatmul, matMulNBits];
