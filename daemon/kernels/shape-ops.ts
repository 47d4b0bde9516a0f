/**
 * Ops that change only a tensor's shape (views of input 0, no kernel) or describe shapes: Shape, Size,
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout; plus the value producers of
 * shape-ops-constants.ts. Every op folds on the CPU, so shape subgraphs disappear at compile time.
 *
 * Shape and Size (and EyeLike) fold from the input's static type alone: their `fold` ignores the input data,
 * which may be null.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, type TensorType } from '../graph/ir.ts';
import { constantInput, constantOutputProgram, normalizeAxes, normalizeAxis, product } from './data-movement-common.ts';
import { nodeError } from './elementwise-dtypes.ts';
import { constantOps } from './shape-ops-constants.ts';
import type { OpContext, OpDefinition } from './types.ts';

function input0(ctx: OpContext): TensorType {
  const type = ctx.inputs[0];
  if (!type) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, 'input 0 is missing');
  return type;
}

/** A view op: output 0 is input 0 with the shape `infer` returns. */
function view(opType: string, shapeOf: (ctx: OpContext) => number[], extra: Partial<OpDefinition> = {}): OpDefinition {
  return {
    opType,
    aliasesInput0: true,
    infer: (ctx) => [{ dtype: input0(ctx).dtype, shape: shapeOf(ctx) }],
    fold: (ctx, inputs) => [{ dtype: inputs[0]!.dtype, dims: shapeOf(ctx), data: inputs[0]!.data }],
    ...extra,
  };
}

function shapeRange(ctx: OpContext): number[] {
  const shape = input0(ctx).shape;
  const a = new Attributes(ctx.node);
  const rank = shape.length;
  const clampIndex = (value: number) => Math.min(Math.max(value < 0 ? value + rank : value, 0), rank);
  const start = ctx.opset >= 15 ? clampIndex(a.int('start', 0)) : 0;
  const end = ctx.opset >= 15 ? clampIndex(a.int('end', rank)) : rank;
  return shape.slice(start, Math.max(start, end));
}

const shapeOp: OpDefinition = {
  opType: 'Shape',
  infer: (ctx) => [{ dtype: 'int64', shape: [shapeRange(ctx).length] }],
  fold: (ctx) => {
    const dims = shapeRange(ctx);
    return [{ dtype: 'int64', dims: [dims.length], data: Int32Array.from(dims) }];
  },
  build: (ctx) => constantOutputProgram(`Shape (${ctx.node.name})`, shapeOp.fold!(ctx, [])[0], 0, ctx.device),
};

const sizeOp: OpDefinition = {
  opType: 'Size',
  infer: (ctx) => {
    input0(ctx);
    return [{ dtype: 'int64', shape: [] }];
  },
  fold: (ctx) => [{ dtype: 'int64', dims: [], data: Int32Array.of(elementCount(input0(ctx).shape)) }],
  build: (ctx) => constantOutputProgram(`Size (${ctx.node.name})`, sizeOp.fold!(ctx, [])[0], 0, ctx.device),
};

function reshapeTarget(ctx: OpContext): number[] {
  const shape = input0(ctx).shape;
  const requested = ctx.opset < 5
    ? new Attributes(ctx.node).ints('shape')
    : Array.from(constantInput(ctx, 1, 'the target shape').data);
  const allowZero = ctx.opset >= 14 && new Attributes(ctx.node).int('allowzero', 0) === 1;
  if (requested.filter((d) => d === -1).length > 1) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `target shape [${requested}] has more than one -1`);
  }
  if (allowZero && requested.includes(0) && requested.includes(-1)) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `target shape [${requested}] has both 0 and -1 with allowzero=1`);
  }
  const out = requested.map((d, i) => {
    if (d < -1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `target shape [${requested}] has a negative dim ${d}`);
    if (d === 0 && !allowZero) {
      if (i >= shape.length) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `target shape [${requested}] copies dim ${i}, but the input has rank ${shape.length}`);
      return shape[i];
    }
    return d;
  });
  const total = elementCount(shape);
  const inferred = out.indexOf(-1);
  if (inferred >= 0) {
    const known = out.reduce((acc, d) => (d === -1 ? acc : acc * d), 1);
    if (known === 0 || total % known !== 0) {
      throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `cannot reshape [${shape}] (${total} elements) to [${requested}]`);
    }
    out[inferred] = total / known;
  }
  if (elementCount(out) !== total) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `cannot reshape [${shape}] (${total} elements) to [${requested}] (${elementCount(out)} elements)`);
  }
  return out;
}

function flattenShape(ctx: OpContext): number[] {
  const shape = input0(ctx).shape;
  const axis = normalizeAxis(ctx.node, new Attributes(ctx.node).int('axis', 1), shape.length, 'axis', true);
  return [product(shape, 0, axis), product(shape, axis)];
}

/** Squeeze/Unsqueeze axes: an attribute before opset 13, an input from 13 on. */
function axesOf(ctx: OpContext, required: boolean): number[] | undefined {
  if (ctx.opset < 13) {
    const a = new Attributes(ctx.node);
    if (!a.has('axes')) {
      if (required) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, "attribute 'axes' is missing");
      return undefined;
    }
    return a.ints('axes');
  }
  if (!ctx.inputs[1]) {
    if (required) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, "input 1 ('axes') is missing");
    return undefined;
  }
  return Array.from(constantInput(ctx, 1, 'axes').data);
}

function squeezeShape(ctx: OpContext): number[] {
  const shape = input0(ctx).shape;
  const axes = axesOf(ctx, false);
  if (!axes) return shape.filter((d) => d !== 1);
  const drop = new Set(normalizeAxes(ctx.node, axes, shape.length));
  for (const axis of drop) {
    if (shape[axis] !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `cannot squeeze axis ${axis} of [${shape}]: its size is not 1`);
  }
  return shape.filter((_, i) => !drop.has(i));
}

function unsqueezeShape(ctx: OpContext): number[] {
  const shape = input0(ctx).shape;
  const axes = axesOf(ctx, true)!;
  const rank = shape.length + axes.length;
  const insert = new Set(normalizeAxes(ctx.node, axes, rank));
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) out.push(insert.has(i) ? 1 : shape[next++]);
  return out;
}

const dropoutOp: OpDefinition = {
  opType: 'Dropout',
  aliasesInput0: true,
  infer(ctx) {
    const type = input0(ctx);
    const training = ctx.opset >= 12 ? ctx.constants[2] : null;
    if (ctx.opset >= 12 && ctx.inputs[2] && (!training || training.data[0] !== 0)) {
      throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node, 'training_mode must be a constant false: the runtime only does inference');
    }
    return [type, { dtype: ctx.opset >= 10 ? 'bool' : type.dtype, shape: type.shape }];
  },
  fold(ctx, inputs) {
    const [, maskType] = dropoutOp.infer(ctx);
    const x = inputs[0]!;
    // inference keeps every element: the mask is all true
    return [x, { dtype: maskType.dtype, dims: x.dims, data: maskType.dtype === 'bool' ? new Int32Array(x.data.length).fill(1) : (x.data instanceof Float32Array ? new Float32Array(x.data.length).fill(1) : new Int32Array(x.data.length).fill(1)) }];
  },
};

const identityOp: OpDefinition = {
  ...view('Identity', (ctx) => input0(ctx).shape),
  fold: (_ctx, inputs) => [inputs[0]!],
  elementwise: { arity: 1, fusionAttributes: () => ({}) },
};

export const ops: OpDefinition[] = [
  shapeOp,
  sizeOp,
  view('Reshape', reshapeTarget),
  view('Flatten', flattenShape),
  view('Squeeze', squeezeShape),
  view('Unsqueeze', unsqueezeShape),
  identityOp,
  dropoutOp,
  ...constantOps,
];

