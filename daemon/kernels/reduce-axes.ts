/** Attribute and input handling of the Reduce* and ArgMax/ArgMin families across opsets. */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import type { TensorType } from '../graph/ir.ts';
import type { OpContext } from './types.ts';

export interface ReduceConfig {
  input: TensorType;
  /** Sorted, non-negative reduced axes (empty only when `noop`). */
  axes: number[];
  keepdims: boolean;
  /**
   * noop_with_empty_axes=1 with no axes: nothing is reduced, but (as in onnxruntime and the ONNX reference)
   * each element still goes through the op's per-element transform (ReduceL2 → |x|, ReduceSumSquare → x²).
   */
  noop: boolean;
  outputShape: number[];
}

function fail(ctx: OpContext, code: 'EDGERUN_ERR_SHAPE' | 'EDGERUN_ERR_UNSUPPORTED_OP', message: string, extra: Record<string, unknown> = {}): never {
  throw new EdgerunError(code, `node '${ctx.node.name}' (${ctx.node.opType}): ${message}`, { node: ctx.node.name, opType: ctx.node.opType, ...extra });
}

/** Normalises (possibly negative) axes against `rank`, rejecting out-of-range and repeated ones. */
export function normalizeAxes(ctx: OpContext, axes: readonly number[], rank: number): number[] {
  const seen = new Set<number>();
  for (const axis of axes) {
    // a scalar is reduced over its (absent) axes as if it had rank 1
    const effectiveRank = Math.max(rank, 1);
    if (!Number.isInteger(axis) || axis < -effectiveRank || axis >= effectiveRank) {
      fail(ctx, 'EDGERUN_ERR_SHAPE', `axis ${axis} is out of range for rank ${rank}`, { axis, rank });
    }
    const normalized = axis < 0 ? axis + effectiveRank : axis;
    if (seen.has(normalized)) fail(ctx, 'EDGERUN_ERR_SHAPE', `axis ${axis} is repeated`, { axes });
    seen.add(normalized);
  }
  return [...seen].filter((axis) => axis < rank).sort((x, y) => x - y);
}

/** The reduced axes: an attribute before `axesInputSince`, an optional constant input from then on. */
export function reduceConfig(ctx: OpContext, axesInputSince: number): ReduceConfig {
  const input = ctx.inputs[0];
  if (!input) fail(ctx, 'EDGERUN_ERR_SHAPE', 'input 0 is required');
  const attrs = new Attributes(ctx.node);
  const rank = input.shape.length;
  let requested: number[];
  let noopWithEmptyAxes = false;
  if (ctx.opset >= axesInputSince) {
    if (ctx.inputs.length > 2) fail(ctx, 'EDGERUN_ERR_SHAPE', `expects at most 2 inputs, got ${ctx.inputs.length}`);
    noopWithEmptyAxes = attrs.int('noop_with_empty_axes', 0) !== 0;
    const axesType = ctx.inputs[1];
    if (axesType) {
      const constant = ctx.constants[1];
      if (!constant) fail(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', 'the axes input must be a constant (dynamic axes are not supported)');
      if (constant.dims.length > 1) fail(ctx, 'EDGERUN_ERR_SHAPE', `axes must be 1-D, got shape [${constant.dims}]`);
      requested = Array.from(constant.data);
    } else {
      requested = [];
    }
  } else {
    if (ctx.inputs.length !== 1) fail(ctx, 'EDGERUN_ERR_SHAPE', `expects 1 input before opset ${axesInputSince}, got ${ctx.inputs.length}`);
    requested = attrs.ints('axes', []);
  }
  const keepdims = attrs.int('keepdims', 1) !== 0;
  const noop = requested.length === 0 && noopWithEmptyAxes;
  const axes = requested.length === 0
    ? (noop ? [] : input.shape.map((_, d) => d))
    : normalizeAxes(ctx, requested, rank);
  const reduced = new Set(axes);
  const outputShape = noop
    ? [...input.shape]
    : input.shape.flatMap((size, d) => (reduced.has(d) ? (keepdims ? [1] : []) : [size]));
  return { input, axes, keepdims, noop, outputShape };
}

export interface ArgConfig {
  input: TensorType;
  axis: number;
  keepdims: boolean;
  selectLastIndex: boolean;
  outputShape: number[];
}

export function argConfig(ctx: OpContext): ArgConfig {
  const input = ctx.inputs[0];
  if (!input || ctx.inputs.length !== 1) fail(ctx, 'EDGERUN_ERR_SHAPE', `expects 1 input, got ${ctx.inputs.length}`);
  const attrs = new Attributes(ctx.node);
  const rank = input.shape.length;
  if (rank === 0) fail(ctx, 'EDGERUN_ERR_SHAPE', 'the input must have rank >= 1');
  const [axis] = normalizeAxes(ctx, [attrs.int('axis', 0)], rank);
  const keepdims = attrs.int('keepdims', 1) !== 0;
  const selectLastIndex = attrs.int('select_last_index', 0) !== 0;
  if (input.shape[axis] === 0) fail(ctx, 'EDGERUN_ERR_SHAPE', `cannot take ${ctx.node.opType} over an empty axis ${axis}`);
  const outputShape = input.shape.flatMap((size, d) => (d === axis ? (keepdims ? [1] : []) : [size]));
  return { input, axis, keepdims, selectLastIndex, outputShape };
}
