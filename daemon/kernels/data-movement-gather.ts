/**
 * Gather and GatherElements. Indices (int32 or int64, held as i32) may be negative (counted from the end);
 * on the GPU an out-of-range index is clamped (onnxruntime rejects it; a shader cannot), while fold rejects it.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, type Tensor, type TensorType } from '../graph/ir.ts';
import { elementKernel, normalizeAxis, product, readBinding, requiredInput, writeBinding } from './data-movement-common.ts';
import { nodeError, requireDType } from './elementwise-dtypes.ts';
import { allocateHost } from './elementwise-program.ts';
import { stridesOf, unravelIndex } from './shader-util.ts';
import type { OpContext, OpDefinition } from './types.ts';

function indicesOf(ctx: OpContext): TensorType {
  const indices = requiredInput(ctx, 1);
  requireDType(ctx.node, 1, indices.dtype, 'integer');
  return indices;
}

function gatherLayout(ctx: OpContext) {
  const data = requiredInput(ctx, 0);
  const indices = indicesOf(ctx);
  const axis = normalizeAxis(ctx.node, new Attributes(ctx.node).int('axis', 0), data.shape.length);
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  return {
    axis,
    axisSize: data.shape[axis],
    outer: product(data.shape, 0, axis),
    inner: product(data.shape, axis + 1),
    count: elementCount(indices.shape),
    type: { dtype: data.dtype, shape } as TensorType,
  };
}

/** An index made non-negative, or an error naming the node (fold only). */
function checkedIndex(ctx: OpContext, value: number, size: number): number {
  const k = value < 0 ? value + size : value;
  if (k < 0 || k >= size) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `index ${value} is out of range for an axis of size ${size}`);
  return k;
}

/** WGSL: index `k` (an i32 expression) normalised and clamped to [0, size). */
function wgslIndex(k: string, size: number): string {
  return `u32(clamp(select(${k}, ${k} + ${size}, ${k} < 0), 0, ${Math.max(size - 1, 0)}))`;
}

const gather: OpDefinition = {
  opType: 'Gather',
  infer: (ctx) => [gatherLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { axisSize, outer, inner, count, type } = gatherLayout(ctx);
    const data: Tensor = inputs[0]!;
    const indices = inputs[1]!.data;
    const out = allocateHost(type.dtype, elementCount(type.shape));
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < count; j++) {
        const k = checkedIndex(ctx, indices[j], axisSize);
        const from = (o * axisSize + k) * inner;
        out.set(data.data.subarray(from, from + inner), (o * count + j) * inner);
      }
    }
    return [{ dtype: type.dtype, dims: type.shape, data: out }];
  },
  build: (ctx) => {
    const { axisSize, inner, count, type } = gatherLayout(ctx);
    const width = inner % 4 === 0 ? 4 : 1;
    const unit = width === 4 ? 'vec4<u32>' : 'u32';
    const units = inner / width;
    const program = elementKernel({
      label: `Gather (${ctx.node.name})`,
      keyParts: ['gather', `w${width}`, `axis${axisSize}`, `inner${inner}`, `count${count}`],
      total: elementCount(type.shape) / width,
      declarations: [readBinding(0, 'source', unit), readBinding(1, 'indices', 'i32'), writeBinding(2, 'destination', unit)],
      body: [
        `let i = idx % ${units}u;`,
        `let t = idx / ${units}u;`,
        `let j = t % ${count}u;`,
        `let o = t / ${count}u;`,
        `let k = ${wgslIndex('indices[j]', axisSize)};`,
        `destination[idx] = source[(o * ${axisSize}u + k) * ${units}u + i];`,
      ],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, { kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

function gatherElementsLayout(ctx: OpContext) {
  const data = requiredInput(ctx, 0);
  const indices = indicesOf(ctx);
  const rank = data.shape.length;
  if (indices.shape.length !== rank) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `indices rank ${indices.shape.length} differs from data rank ${rank}`);
  }
  const axis = normalizeAxis(ctx.node, new Attributes(ctx.node).int('axis', 0), rank);
  indices.shape.forEach((d, k) => {
    if (k !== axis && d > data.shape[k]) {
      throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `indices shape [${indices.shape}] exceeds data shape [${data.shape}] on axis ${k}`);
    }
  });
  return { axis, dataShape: data.shape, type: { dtype: data.dtype, shape: indices.shape } as TensorType };
}

const gatherElements: OpDefinition = {
  opType: 'GatherElements',
  infer: (ctx) => [gatherElementsLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { axis, dataShape, type } = gatherElementsLayout(ctx);
    const dataStrides = stridesOf(dataShape);
    const outStrides = stridesOf(type.shape);
    const indices = inputs[1]!.data;
    const out = allocateHost(type.dtype, indices.length);
    for (let i = 0; i < indices.length; i++) {
      let offset = 0;
      for (let d = 0; d < type.shape.length; d++) {
        const coord = d === axis ? checkedIndex(ctx, indices[i], dataShape[axis]) : Math.floor(i / outStrides[d]) % type.shape[d];
        offset += coord * dataStrides[d];
      }
      out[i] = inputs[0]!.data[offset];
    }
    return [{ dtype: type.dtype, dims: type.shape, data: out }];
  },
  build: (ctx) => {
    const { axis, dataShape, type } = gatherElementsLayout(ctx);
    const dataStrides = stridesOf(dataShape);
    const terms = type.shape.map((_, d) => `${d === axis ? 'k' : `c${d}`} * ${dataStrides[d]}u`);
    const program = elementKernel({
      label: `GatherElements (${ctx.node.name})`,
      keyParts: ['gather-elements', `axis${axis}`, `data[${dataShape}]`, `out[${type.shape}]`],
      total: elementCount(type.shape),
      declarations: [readBinding(0, 'source'), readBinding(1, 'indices', 'i32'), writeBinding(2, 'destination')],
      body: [unravelIndex(type.shape), `let k = ${wgslIndex('indices[idx]', dataShape[axis])};`, `destination[idx] = source[${terms.join(' + ')}];`],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, { kind: 'output', index: 0 }],
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

export const gatherOps: OpDefinition[] = [gather, gatherElements];
