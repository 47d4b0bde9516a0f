/** Trilu (keep the upper or lower triangle of the last two dims) and CumSum (running sums along an axis). */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type Tensor, type TensorType } from '../graph/ir.ts';
import { constantInput, elementKernel, normalizeAxis, product, readBinding, requiredInput, writeBinding } from './data-movement-common.ts';
import { nodeError, requireDType } from './elementwise-dtypes.ts';
import { wgslType } from './elementwise-expr.ts';
import { allocateHost } from './elementwise-program.ts';
import type { OpContext, OpDefinition } from './types.ts';

function scalarInput(ctx: OpContext, index: number, what: string, fallback: number): number {
  if (!ctx.inputs[index]) return fallback;
  const t = constantInput(ctx, index, what);
  if (t.data.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `'${what}' must be a scalar, got [${t.dims}]`);
  return t.data[0];
}

function triluLayout(ctx: OpContext): { type: TensorType; k: number; upper: boolean } {
  const type = requiredInput(ctx, 0);
  if (type.shape.length < 2) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input must have rank >= 2, got [${type.shape}]`);
  return { type, k: scalarInput(ctx, 1, 'k', 0), upper: new Attributes(ctx.node).int('upper', 1) !== 0 };
}

const trilu: OpDefinition = {
  opType: 'Trilu',
  infer: (ctx) => [triluLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { type, k, upper } = triluLayout(ctx);
    const [rows, cols] = type.shape.slice(-2);
    const source: Tensor = inputs[0]!;
    const out = allocateHost(type.dtype, source.data.length);
    for (let i = 0; i < out.length; i++) {
      const col = i % cols;
      const row = Math.floor(i / cols) % rows;
      const keep = upper ? col - row >= k : col - row <= k;
      if (keep) out[i] = source.data[i];
    }
    return [{ dtype: type.dtype, dims: type.shape, data: out }];
  },
  build: (ctx) => {
    const { type, k, upper } = triluLayout(ctx);
    const [rows, cols] = type.shape.slice(-2);
    const program = elementKernel({
      label: `Trilu (${ctx.node.name})`,
      keyParts: ['trilu', upper ? 'upper' : 'lower', `rows${rows}`, `cols${cols}`, `k${k}`],
      total: elementCount(type.shape),
      declarations: [readBinding(0, 'source'), writeBinding(1, 'destination')],
      body: [
        `let col = i32(idx % ${cols}u);`,
        `let row = i32((idx / ${cols}u) % ${rows}u);`,
        `destination[idx] = select(0u, source[idx], col - row ${upper ? '>=' : '<='} ${k});`,
      ],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

function cumSumLayout(ctx: OpContext) {
  const type = requiredInput(ctx, 0);
  requireDType(ctx.node, 0, type.dtype, 'numeric');
  const axisTensor = constantInput(ctx, 1, 'axis');
  if (axisTensor.data.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `'axis' must be a scalar, got [${axisTensor.dims}]`);
  const axis = normalizeAxis(ctx.node, axisTensor.data[0], type.shape.length);
  const a = new Attributes(ctx.node);
  return {
    type,
    outer: product(type.shape, 0, axis),
    length: type.shape[axis],
    inner: product(type.shape, axis + 1),
    exclusive: a.int('exclusive', 0) !== 0,
    reverse: a.int('reverse', 0) !== 0,
  };
}

const cumSum: OpDefinition = {
  opType: 'CumSum',
  infer: (ctx) => [cumSumLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { type, outer, length, inner, exclusive, reverse } = cumSumLayout(ctx);
    const source = inputs[0]!.data;
    const out = allocateHost(type.dtype, source.length);
    const float = isFloatDType(type.dtype);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let sum = 0;
        for (let step = 0; step < length; step++) {
          const a = reverse ? length - 1 - step : step;
          const index = (o * length + a) * inner + i;
          if (exclusive) out[index] = sum;
          // the running sum rounds like the element type after every addition
          sum = float ? Math.fround(sum + source[index]) : (sum + source[index]) | 0;
          if (!exclusive) out[index] = sum;
        }
      }
    }
    return [{ dtype: type.dtype, dims: type.shape, data: out }];
  },
  build: (ctx) => {
    const { type, outer, length, inner, exclusive, reverse } = cumSumLayout(ctx);
    const scalar = wgslType(type.dtype);
    const program = elementKernel({
      label: `CumSum (${ctx.node.name})`,
      keyParts: ['cumsum', scalar, `outer${outer}`, `len${length}`, `inner${inner}`, exclusive ? 'exclusive' : 'inclusive', reverse ? 'reverse' : 'forward'],
      total: outer * inner,
      declarations: [readBinding(0, 'source', scalar), writeBinding(1, 'destination', scalar)],
      body: [
        `let i = idx % ${inner}u;`,
        `let o = idx / ${inner}u;`,
        `var sum = ${scalar}(0);`,
        `for (var step = 0u; step < ${length}u; step++) {`,
        `  let index = (o * ${length}u + ${reverse ? `${length - 1}u - step` : 'step'}) * ${inner}u + i;`,
        ...(exclusive
          ? ['  destination[index] = sum;', '  sum = sum + source[index];']
          : ['  sum = sum + source[index];', '  destination[index] = sum;']),
        '}',
      ],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

export const triluCumSumOps: OpDefinition[] = [trilu, cumSum];
