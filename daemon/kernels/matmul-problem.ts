/**
 * MatMul and Gemm reduced to one description: a batch of [M,K]·[K,N] products whose operands are read
 * through baked strides. The WGSL generators (matmul-tiled.ts, matmul-gemv.ts) only see this form.
 */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type Tensor, type TensorType } from '../graph/ir.ts';
import { broadcastShapes, stridesOf } from './shader-util.ts';
import type { Binding, BuildContext, Epilogue, OpContext } from './types.ts';

/** How a kernel reads one operand: element (r, c) of batch b sits at batchOffset(b) + r*rowStride + c*colStride. */
export interface OperandAccess {
  binding: Binding;
  rowStride: number;
  colStride: number;
  /** Stride of each output batch dim in this operand (0 where it is broadcast). */
  batchStrides: number[];
  /**
   * True when 4 consecutive elements along the column axis (k for A, n for B) starting at a multiple of 4
   * can be read as one vec4: colStride 1 and every other stride a multiple of 4.
   */
  vec4: boolean;
}

/** C of Gemm, broadcast to [M, N]: element (m, n) at m*rowStride + n*colStride (strides 0 where broadcast). */
export interface BiasAccess {
  binding: Binding;
  rowStride: number;
  colStride: number;
}

export interface MatMulProblem {
  /** For labels: the node name and op. */
  node: string;
  opType: string;
  batchShape: number[];
  M: number;
  K: number;
  N: number;
  a: OperandAccess;
  b: OperandAccess;
  bias?: BiasAccess;
  alpha: number;
  beta: number;
  epilogue?: Epilogue;
}

function shapeError(ctx: OpContext, message: string, extra: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_SHAPE', `node '${ctx.node.name}' (${ctx.node.opType}): ${message}`,
    { node: ctx.node.name, opType: ctx.node.opType, ...extra });
}

function requireFloat(ctx: OpContext, index: number, type: TensorType): void {
  if (!isFloatDType(type.dtype)) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `node '${ctx.node.name}' (${ctx.node.opType}): input ${index} is ${type.dtype}; only floating-point ${ctx.node.opType} is implemented`,
      { node: ctx.node.name, opType: ctx.node.opType, input: index, dtype: type.dtype });
  }
}

function requireInput(ctx: OpContext, index: number): TensorType {
  const type = ctx.inputs[index];
  if (!type) throw shapeError(ctx, `input ${index} is required`, { input: index });
  return type;
}

export interface MatMulShapes {
  /** Operands after ONNX's 1-D promotion: [...batch, M, K] and [...batch, K, N]. */
  aShape: number[];
  bShape: number[];
  batchShape: number[];
  outputShape: number[];
}

/** Validates a MatMul node and works out the NumPy-semantics shapes. */
export function matmulShapes(ctx: OpContext): MatMulShapes {
  if (ctx.inputs.length !== 2) throw shapeError(ctx, `expects 2 inputs, got ${ctx.inputs.length}`);
  const a = requireInput(ctx, 0);
  const b = requireInput(ctx, 1);
  requireFloat(ctx, 0, a);
  requireFloat(ctx, 1, b);
  if (a.dtype !== b.dtype) throw shapeError(ctx, `input dtypes differ (${a.dtype} vs ${b.dtype})`);
  if (a.shape.length === 0 || b.shape.length === 0) throw shapeError(ctx, 'scalar operands are not allowed', { aShape: a.shape, bShape: b.shape });
  const aShape = a.shape.length === 1 ? [1, a.shape[0]] : [...a.shape];
  const bShape = b.shape.length === 1 ? [b.shape[0], 1] : [...b.shape];
  const K = aShape[aShape.length - 1];
  if (bShape[bShape.length - 2] !== K) {
    throw shapeError(ctx, `inner dimensions differ: A [${a.shape}] has K=${K}, B [${b.shape}] has K=${bShape[bShape.length - 2]}`,
      { aShape: a.shape, bShape: b.shape });
  }
  const batchShape = broadcastShapes(aShape.slice(0, -2), bShape.slice(0, -2));
  if (!batchShape) throw shapeError(ctx, `batch dimensions of [${a.shape}] and [${b.shape}] do not broadcast`, { aShape: a.shape, bShape: b.shape });
  const outputShape = [...batchShape];
  if (a.shape.length > 1) outputShape.push(aShape[aShape.length - 2]);
  if (b.shape.length > 1) outputShape.push(bShape[bShape.length - 1]);
  return { aShape, bShape, batchShape, outputShape };
}

export interface GemmAttributes {
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

export function gemmAttributes(ctx: OpContext): GemmAttributes {
  const attrs = new Attributes(ctx.node);
  return {
    transA: attrs.int('transA', 0) !== 0,
    transB: attrs.int('transB', 0) !== 0,
    alpha: attrs.float('alpha', 1),
    beta: attrs.float('beta', 1),
  };
}

/** Validates a Gemm node; returns [M, N] and K. */
export function gemmShapes(ctx: OpContext): { M: number; K: number; N: number } {
  if (ctx.inputs.length < 2 || ctx.inputs.length > 3) throw shapeError(ctx, `expects 2 or 3 inputs, got ${ctx.inputs.length}`);
  const a = requireInput(ctx, 0);
  const b = requireInput(ctx, 1);
  requireFloat(ctx, 0, a);
  requireFloat(ctx, 1, b);
  if (a.shape.length !== 2 || b.shape.length !== 2) throw shapeError(ctx, `A and B must be 2-D, got [${a.shape}] and [${b.shape}]`, { aShape: a.shape, bShape: b.shape });
  const { transA, transB } = gemmAttributes(ctx);
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [KB, N] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (K !== KB) throw shapeError(ctx, `inner dimensions differ: A [${a.shape}] (transA=${+transA}) vs B [${b.shape}] (transB=${+transB})`, { aShape: a.shape, bShape: b.shape });
  const c = ctx.inputs[2];
  if (!c && ctx.opset < 11) throw shapeError(ctx, `input C is required before opset 11`);
  if (c) {
    requireFloat(ctx, 2, c);
    const attrs = new Attributes(ctx.node);
    const explicitBroadcast = ctx.opset < 7 && attrs.int('broadcast', 0) === 0;
    const fits = c.shape.length <= 2 && broadcastShapes(c.shape, [M, N])?.join(',') === `${M},${N}`;
    if (!fits || (explicitBroadcast && c.shape.join(',') !== `${M},${N}`)) {
      throw shapeError(ctx, `C [${c.shape}] does not broadcast to [${M},${N}]`, { cShape: c.shape });
    }
  }
  return { M, K, N };
}

/** Strides of an operand's batch dims aligned to the output batch shape (0 where broadcast or absent). */
function batchStridesFor(operandBatch: number[], batchShape: number[], matrixSize: number): number[] {
  const offset = batchShape.length - operandBatch.length;
  const own = stridesOf(operandBatch);
  return batchShape.map((_, d) => {
    const od = d - offset;
    if (od < 0 || operandBatch[od] === 1) return 0;
    return own[od] * matrixSize;
  });
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * A constant B rewritten at build time as dense [batchB][K][Npad4] row-major, zero padded so every column
 * group of 4 is one aligned vec4, whatever its original layout (transposed Gemm weights included).
 */
function repackB(b: Tensor, batchCount: number, K: number, N: number, rowStride: number, colStride: number): Float32Array {
  const nPad = roundUp4(N);
  const out = new Float32Array(batchCount * K * nPad);
  const src = b.data;
  for (let batch = 0; batch < batchCount; batch++) {
    const srcBase = batch * K * N;
    const dstBase = batch * K * nPad;
    for (let k = 0; k < K; k++) {
      for (let n = 0; n < N; n++) out[dstBase + k * nPad + n] = src[srcBase + k * rowStride + n * colStride];
    }
  }
  return out;
}

function isVec4(rowStride: number, colStride: number, batchStrides: number[], cols: number): boolean {
  // cols > 0: an empty operand may be bound as a 4-byte buffer, smaller than one vec4
  return cols > 0 && colStride === 1 && cols % 4 === 0 && rowStride % 4 === 0 && batchStrides.every((s) => s % 4 === 0);
}

function operandB(
  ctx: BuildContext, bBatch: number[], batchShape: number[], K: number, N: number, rowStride: number, colStride: number,
): OperandAccess {
  const constant = ctx.constants[1];
  if (constant) {
    const nPad = roundUp4(N);
    const data = repackB(constant, elementCount(bBatch), K, N, rowStride, colStride);
    return { binding: { kind: 'constant', data }, rowStride: nPad, colStride: 1, batchStrides: batchStridesFor(bBatch, batchShape, K * nPad), vec4: data.length > 0 };
  }
  const batchStrides = batchStridesFor(bBatch, batchShape, K * N);
  return { binding: { kind: 'input', index: 1 }, rowStride, colStride, batchStrides, vec4: isVec4(rowStride, colStride, batchStrides, N) };
}

/** The MatMul node as a batched GEMM; A's batch dims fold into M when B has no batch of its own. */
export function matmulProblem(ctx: BuildContext): MatMulProblem {
  const { aShape, bShape, batchShape: fullBatch } = matmulShapes(ctx);
  const K = aShape[aShape.length - 1];
  const N = bShape[bShape.length - 1];
  let M = aShape[aShape.length - 2];
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  let batchShape = fullBatch;
  if (elementCount(bBatch) === 1) {
    // B is one matrix: A's rows of all batches are one contiguous [batch*M, K] matrix
    M *= elementCount(aBatch);
    batchShape = [];
  }
  const aBatchStrides = batchStridesFor(aBatch, batchShape, M * K);
  const a: OperandAccess = { binding: { kind: 'input', index: 0 }, rowStride: K, colStride: 1, batchStrides: aBatchStrides, vec4: isVec4(K, 1, aBatchStrides, K) };
  const b = operandB(ctx, batchShape.length ? bBatch : [], batchShape, K, N, N, 1);
  return { node: ctx.node.name, opType: 'MatMul', batchShape, M, K, N, a, b, alpha: 1, beta: 0, epilogue: ctx.epilogue };
}

export function gemmProblem(ctx: BuildContext): MatMulProblem {
  const { M, K, N } = gemmShapes(ctx);
  const { transA, transB, alpha, beta } = gemmAttributes(ctx);
  const [aRow, aCol] = transA ? [1, M] : [K, 1];
  const [bRow, bCol] = transB ? [1, K] : [N, 1];
  const a: OperandAccess = { binding: { kind: 'input', index: 0 }, rowStride: aRow, colStride: aCol, batchStrides: [], vec4: isVec4(aRow, aCol, [], K) };
  const b = operandB(ctx, [], [], K, N, bRow, bCol);
  const problem: MatMulProblem = { node: ctx.node.name, opType: 'Gemm', batchShape: [], M, K, N, a, b, alpha, beta: 0, epilogue: ctx.epilogue };
  const cType = ctx.inputs[2];
  if (cType && beta !== 0) {
    const cShape = [...Array(2 - cType.shape.length).fill(1), ...cType.shape];
    const rowStride = cShape[0] === 1 ? 0 : cShape[1];
    const colStride = cShape[1] === 1 ? 0 : 1;
    const constant = ctx.constants[2];
    // a constant C is pre-scaled by beta so the kernel adds it as is
    const binding: Binding = constant
      ? { kind: 'constant', data: Float32Array.from(constant.data, (v) => v * beta) }
      : { kind: 'input', index: 2 };
    problem.bias = { binding, rowStride, colStride };
    problem.beta = constant ? 1 : beta;
  }
  return problem;
}

/** A text form of everything in the problem the WGSL depends on (bindings' data excluded). */
export function problemKey(p: MatMulProblem): string {
  const operand = (o: OperandAccess) => `${o.binding.kind === 'constant' ? 'c' : 'i'}${o.rowStride},${o.colStride},[${o.batchStrides}]${o.vec4 ? 'v' : 's'}`;
  const bias = p.bias ? `bias(${p.bias.rowStride},${p.bias.colStride})` : 'nobias';
  return `b[${p.batchShape}] m${p.M} k${p.K} n${p.N} A(${operand(p.a)}) B(${operand(p.b)}) ${bias} alpha=${p.alpha} beta=${p.beta}`;
}
