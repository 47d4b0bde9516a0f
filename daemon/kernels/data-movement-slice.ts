/** Slice and Expand (affine views of their input) and Tile (a modular gather). */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, type Tensor } from '../graph/ir.ts';
import { viewOp, type AffineView } from './data-movement-affine.ts';
import { constantInput, elementKernel, normalizeAxes, readBinding, requiredInput, writeBinding } from './data-movement-common.ts';
import { nodeError } from './elementwise-dtypes.ts';
import { allocateHost } from './elementwise-program.ts';
import { broadcastShapes, stridesOf, unravelIndex } from './shader-util.ts';
import type { OpContext, OpDefinition } from './types.ts';

interface SliceParameters { starts: number[]; ends: number[]; axes: number[]; steps: number[] }

function sliceParameters(ctx: OpContext): SliceParameters {
  const rank = requiredInput(ctx, 0).shape.length;
  let starts: number[];
  let ends: number[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    const a = new Attributes(ctx.node);
    starts = a.ints('starts');
    ends = a.ints('ends');
    axes = a.has('axes') ? a.ints('axes') : undefined;
  } else {
    const ints = (index: number, what: string) => Array.from(constantInput(ctx, index, what).data);
    starts = ints(1, 'starts');
    ends = ints(2, 'ends');
    axes = ctx.inputs[3] ? ints(3, 'axes') : undefined;
    steps = ctx.inputs[4] ? ints(4, 'steps') : undefined;
  }
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `starts, ends, axes and steps differ in length (${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  if (steps.includes(0)) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `steps [${steps}] contain 0`);
  return { starts, ends, axes: normalizeAxes(ctx.node, axes, rank), steps };
}

/**
 * Per ONNX: negative starts/ends count from the end, then they are clamped to [0, dim] (positive steps) or
 * [0, dim-1] / [-1, dim-1] (negative steps); int64 bounds like INT64_MAX arrive saturated to int32 and clamp the same.
 */
function sliceLayout(ctx: OpContext): { view: AffineView; shape: number[] } {
  const shape = requiredInput(ctx, 0).shape;
  const { starts, ends, axes, steps } = sliceParameters(ctx);
  const strides = stridesOf(shape);
  const outShape = [...shape];
  const viewStrides = [...strides];
  let base = 0;
  axes.forEach((axis, i) => {
    const dim = shape[axis];
    const step = steps[i];
    let start = starts[i] < 0 ? starts[i] + dim : starts[i];
    let end = ends[i] < 0 ? ends[i] + dim : ends[i];
    let count: number;
    if (step > 0) {
      start = Math.min(Math.max(start, 0), dim);
      end = Math.min(Math.max(end, 0), dim);
      count = Math.max(0, Math.ceil((end - start) / step));
    } else {
      start = Math.min(Math.max(start, 0), dim - 1);
      end = Math.min(Math.max(end, -1), dim - 1);
      count = Math.max(0, Math.ceil((start - end) / -step));
    }
    outShape[axis] = count;
    viewStrides[axis] = strides[axis] * step;
    if (count > 0) base += start * strides[axis];
  });
  return { view: { outShape, base: elementCount(outShape) ? base : 0, strides: viewStrides }, shape: outShape };
}

function expandLayout(ctx: OpContext): { view: AffineView; shape: number[] } {
  const input = requiredInput(ctx, 0).shape;
  const target = constantInput(ctx, 1, 'the target shape');
  if (target.dims.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `the shape input must be 1-D, got [${target.dims}]`);
  const requested = Array.from(target.data);
  const shape = broadcastShapes(input, requested);
  if (!shape || requested.some((d) => d < 0)) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input [${input}] cannot be expanded to [${requested}]`, { shape: requested });
  }
  const strides = stridesOf(input);
  const offset = shape.length - input.length;
  const viewStrides = shape.map((_, d) => {
    const k = d - offset;
    return k >= 0 && input[k] !== 1 ? strides[k] : 0;
  });
  return { view: { outShape: shape, base: 0, strides: viewStrides }, shape };
}

function tileLayout(ctx: OpContext): { input: number[]; shape: number[] } {
  const input = requiredInput(ctx, 0).shape;
  const repeats = Array.from(constantInput(ctx, 1, 'repeats').data);
  if (repeats.length !== input.length || repeats.some((r) => r < 0)) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `repeats [${repeats}] must be ${input.length} non-negative counts for input [${input}]`);
  }
  return { input, shape: input.map((d, i) => d * repeats[i]) };
}

const tile: OpDefinition = {
  opType: 'Tile',
  infer: (ctx) => [{ dtype: requiredInput(ctx, 0).dtype, shape: tileLayout(ctx).shape }],
  fold: (ctx, inputs) => {
    const { input, shape } = tileLayout(ctx);
    const source: Tensor = inputs[0]!;
    const total = elementCount(shape);
    const out = allocateHost(source.dtype, total);
    const inStrides = stridesOf(input);
    const outStrides = stridesOf(shape);
    for (let i = 0; i < total; i++) {
      let offset = 0;
      for (let d = 0; d < shape.length; d++) offset += (Math.floor(i / outStrides[d]) % shape[d] % input[d]) * inStrides[d];
      out[i] = source.data[offset];
    }
    return [{ dtype: source.dtype, dims: shape, data: out }];
  },
  build: (ctx) => {
    const { input, shape } = tileLayout(ctx);
    const inStrides = stridesOf(input);
    const terms = input.flatMap((dim, d) => (dim === 1 ? [] : [`(c${d} % ${dim}u) * ${inStrides[d]}u`]));
    const program = elementKernel({
      label: `Tile (${ctx.node.name})`,
      keyParts: ['tile', `[${input}]`, `[${shape}]`],
      total: elementCount(shape),
      declarations: [readBinding(0, 'source'), writeBinding(1, 'destination')],
      body: [unravelIndex(shape), `destination[idx] = source[${terms.length ? terms.join(' + ') : '0u'}];`],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

export const sliceOps: OpDefinition[] = [viewOp('Slice', sliceLayout), viewOp('Expand', expandLayout), tile];
