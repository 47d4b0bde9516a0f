/**
 * Ops that produce values rather than move them: Constant, ConstantOfShape, Range, EyeLike. Their outputs
 * are normally folded at compile time; `build` exists for values too large to fold and for EyeLike, whose
 * input may be computed on the GPU (only its shape matters).
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type DType, type Tensor, type TensorType } from '../graph/ir.ts';
import { constantInput, constantOutputProgram, elementKernel, writeBinding } from './data-movement-common.ts';
import { dtypeFromOnnx, nodeError, requireDType, requireSameDType } from './elementwise-dtypes.ts';
import { wgslLiteral, wgslType } from './elementwise-expr.ts';
import { allocateHost } from './elementwise-program.ts';
import type { OpContext, OpDefinition } from './types.ts';

function constantValue(ctx: OpContext): Tensor {
  const a = new Attributes(ctx.node);
  const forms = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings', 'sparse_value']
    .filter((name) => a.has(name));
  if (forms.length !== 1) {
    throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `needs exactly one value attribute, has ${forms.length ? forms.join(', ') : 'none'}`);
  }
  switch (forms[0]) {
    case 'value': return a.tensor('value');
    case 'value_float': return { dtype: 'float32', dims: [], data: Float32Array.of(a.float('value_float')) };
    case 'value_floats': { const v = a.floats('value_floats'); return { dtype: 'float32', dims: [v.length], data: Float32Array.from(v) }; }
    case 'value_int': return { dtype: 'int64', dims: [], data: Int32Array.of(a.int('value_int')) };
    case 'value_ints': { const v = a.ints('value_ints'); return { dtype: 'int64', dims: [v.length], data: Int32Array.from(v) }; }
    default:
      throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node, `attribute '${forms[0]}' (strings and sparse tensors) is not supported`);
  }
}

const constantOp: OpDefinition = {
  opType: 'Constant',
  infer: (ctx) => {
    const value = constantValue(ctx);
    return [{ dtype: value.dtype, shape: value.dims }];
  },
  fold: (ctx) => [constantValue(ctx)],
  build: (ctx) => constantOutputProgram(`Constant (${ctx.node.name})`, constantValue(ctx), 0, ctx.device),
};

function constantOfShapeType(ctx: OpContext): { type: TensorType; value: number } {
  const shapeInput = constantInput(ctx, 0, 'the output shape');
  if (shapeInput.dims.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `the shape input must be 1-D, got [${shapeInput.dims}]`);
  const shape = Array.from(shapeInput.data);
  if (shape.some((d) => d < 0)) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `the output shape [${shape}] has a negative dim`);
  const a = new Attributes(ctx.node);
  if (!a.has('value')) return { type: { dtype: 'float32', shape }, value: 0 };
  const value = a.tensor('value');
  if (value.data.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `attribute 'value' must hold one element, has ${value.data.length}`);
  return { type: { dtype: value.dtype, shape }, value: value.data[0] };
}

const constantOfShapeOp: OpDefinition = {
  opType: 'ConstantOfShape',
  infer: (ctx) => [constantOfShapeType(ctx).type],
  fold: (ctx) => {
    const { type, value } = constantOfShapeType(ctx);
    const data = allocateHost(type.dtype, elementCount(type.shape));
    data.fill(value);
    return [{ dtype: type.dtype, dims: type.shape, data }];
  },
  build: (ctx) => {
    const { type, value } = constantOfShapeType(ctx);
    const scalar = wgslType(type.dtype);
    const program = elementKernel({
      label: `ConstantOfShape (${ctx.node.name})`,
      keyParts: ['fill', scalar, String(value)],
      total: elementCount(type.shape),
      declarations: [writeBinding(0, 'destination', scalar)],
      body: [`destination[idx] = ${wgslLiteral(value, scalar)};`],
      bindings: [{ kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

const RANGE_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float64', 'int16', 'int32', 'int64']);

/**
 * Range's values as onnxruntime computes them: the count is ceil((limit - start) / delta) with the
 * difference taken in the element type, each element the previous one plus delta.
 */
function rangeValue(ctx: OpContext): Tensor {
  const dtypes = ctx.inputs.map((t) => t?.dtype);
  requireSameDType(ctx.node, dtypes, [0, 1, 2]);
  const dtype = dtypes[0]!;
  if (!RANGE_DTYPES.has(dtype)) requireDType(ctx.node, 0, dtype, 'float');
  const [start, limit, delta] = ['start', 'limit', 'delta'].map((what, i) => {
    const t = constantInput(ctx, i, what);
    if (t.data.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `'${what}' must be a scalar, got [${t.dims}]`);
    return t.data[0];
  });
  if (delta === 0) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, 'delta must not be 0');
  const float = isFloatDType(dtype);
  const span = float ? Math.fround(limit - start) : limit - start;
  const count = Math.max(Math.ceil(span / delta), 0);
  const data = allocateHost(dtype, count);
  // accumulated in the element type, as onnxruntime does (start + i * delta rounds differently for floats)
  let value = start;
  for (let i = 0; i < count; i++) {
    data[i] = value;
    value = float ? Math.fround(value + delta) : value + delta;
  }
  return { dtype, dims: [count], data };
}

const rangeOp: OpDefinition = {
  opType: 'Range',
  infer: (ctx) => {
    const value = rangeValue(ctx);
    return [{ dtype: value.dtype, shape: value.dims }];
  },
  fold: (ctx) => [rangeValue(ctx)],
  // the inputs decide the output shape, so they are known at build time: upload the folded values
  build: (ctx) => constantOutputProgram(`Range (${ctx.node.name})`, rangeValue(ctx), 0, ctx.device),
};

function eyeLikeType(ctx: OpContext): { type: TensorType; k: number } {
  const input = ctx.inputs[0];
  if (!input) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, 'input 0 is missing');
  if (input.shape.length !== 2) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input must be 2-D, got [${input.shape}]`);
  const a = new Attributes(ctx.node);
  const dtype = a.has('dtype') ? dtypeFromOnnx(a.int('dtype'), ctx.node, 'dtype') : input.dtype;
  return { type: { dtype, shape: input.shape }, k: a.int('k', 0) };
}

const eyeLikeOp: OpDefinition = {
  opType: 'EyeLike',
  infer: (ctx) => [eyeLikeType(ctx).type],
  fold: (ctx) => {
    const { type, k } = eyeLikeType(ctx);
    const [rows, cols] = type.shape;
    const data = allocateHost(type.dtype, rows * cols);
    for (let r = 0; r < rows; r++) {
      const c = r + k;
      if (c >= 0 && c < cols) data[r * cols + c] = 1;
    }
    return [{ dtype: type.dtype, dims: type.shape, data }];
  },
  build: (ctx) => {
    const { type, k } = eyeLikeType(ctx);
    const scalar = wgslType(type.dtype);
    const cols = type.shape[1];
    const program = elementKernel({
      label: `EyeLike (${ctx.node.name})`,
      keyParts: ['eye', scalar, `cols${cols}`, `k${k}`],
      total: elementCount(type.shape),
      declarations: [writeBinding(0, 'destination', scalar)],
      body: [
        `let row = i32(idx / ${cols}u);`,
        `let col = i32(idx % ${cols}u);`,
        `destination[idx] = select(${wgslLiteral(0, scalar)}, ${wgslLiteral(1, scalar)}, col - row == ${k});`,
      ],
      bindings: [{ kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

export const constantOps: OpDefinition[] = [constantOp, constantOfShapeOp, rangeOp, eyeLikeOp];
