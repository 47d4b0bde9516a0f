/**
 * Concat and Split. Both see their tensors as [outer, axis, inner] blocks: each piece (a Concat input, a
 * Split output) is one slab of the whole, copied by its own affine-view program (vec4s when the slab's rows
 * are multiples of 4 elements).
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, type Tensor, type TensorType } from '../graph/ir.ts';
import { scatterProgram, viewProgram, type AffineView } from './data-movement-affine.ts';
import { constantInput, normalizeAxis, product, requiredInput } from './data-movement-common.ts';
import { nodeError, requireSameDType } from './elementwise-dtypes.ts';
import { allocateHost } from './elementwise-program.ts';
import type { BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';

interface Blocks {
  outer: number;
  inner: number;
  /** Axis size of each piece (Concat inputs, Split outputs). */
  sizes: number[];
  /** Axis size of the whole (Concat output, Split input). */
  total: number;
}

function concatLayout(ctx: OpContext): { blocks: Blocks; axis: number; type: TensorType } {
  const present = ctx.inputs.map((t, i) => (t ? i : -1)).filter((i) => i >= 0);
  if (!present.length) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, 'needs at least one input');
  const first = requiredInput(ctx, 0);
  const rank = first.shape.length;
  const axis = normalizeAxis(ctx.node, new Attributes(ctx.node).int('axis'), rank);
  requireSameDType(ctx.node, ctx.inputs.map((t) => t?.dtype), present);
  ctx.inputs.forEach((t, i) => {
    if (!t) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `input ${i} is missing`);
    if (t.shape.length !== rank || t.shape.some((d, k) => k !== axis && d !== first.shape[k])) {
      throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input ${i} ('${ctx.node.inputs[i]}') has shape [${t.shape}], incompatible with [${first.shape}] along axis ${axis}`);
    }
  });
  const sizes = ctx.inputs.map((t) => t!.shape[axis]);
  const total = sizes.reduce((a, b) => a + b, 0);
  const shape = [...first.shape];
  shape[axis] = total;
  return { blocks: { outer: product(first.shape, 0, axis), inner: product(first.shape, axis + 1), sizes, total }, axis, type: { dtype: first.dtype, shape } };
}

function splitSizes(ctx: OpContext, dim: number): number[] {
  const outputs = ctx.node.outputs.length;
  const a = new Attributes(ctx.node);
  let sizes: number[] | undefined;
  if (ctx.opset < 13) sizes = a.has('split') ? a.ints('split') : undefined;
  else if (ctx.inputs[1]) sizes = Array.from(constantInput(ctx, 1, 'split').data);
  if (!sizes && ctx.opset >= 18 && a.has('num_outputs')) {
    const n = a.int('num_outputs');
    if (n !== outputs) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `num_outputs ${n} differs from the ${outputs} outputs`);
    const chunk = Math.ceil(dim / n);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
  }
  if (!sizes) {
    if (dim % outputs !== 0) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `axis size ${dim} does not split evenly into ${outputs} outputs`);
    sizes = new Array<number>(outputs).fill(dim / outputs);
  }
  if (sizes.length !== outputs || sizes.some((s) => s < 0) || sizes.reduce((x, y) => x + y, 0) !== dim) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `split [${sizes}] does not divide axis size ${dim} into ${outputs} outputs`);
  }
  return sizes;
}

function splitLayout(ctx: OpContext): { blocks: Blocks; axis: number; types: TensorType[] } {
  const input = requiredInput(ctx, 0);
  const axis = normalizeAxis(ctx.node, new Attributes(ctx.node).int('axis', 0), input.shape.length);
  const sizes = splitSizes(ctx, input.shape[axis]);
  const types = sizes.map((size) => {
    const shape = [...input.shape];
    shape[axis] = size;
    return { dtype: input.dtype, shape };
  });
  return { blocks: { outer: product(input.shape, 0, axis), inner: product(input.shape, axis + 1), sizes, total: input.shape[axis] }, axis, types };
}

/** Copies between the whole and its pieces on the CPU. */
function copyBlocks(blocks: Blocks, whole: Tensor['data'], pieces: Tensor['data'][], direction: 'gather' | 'scatter'): void {
  const { outer, inner, sizes, total } = blocks;
  let offset = 0;
  sizes.forEach((size, k) => {
    const piece = pieces[k];
    for (let o = 0; o < outer; o++) {
      const wholeStart = (o * total + offset) * inner;
      const pieceStart = o * size * inner;
      const length = size * inner;
      if (direction === 'gather') whole.set(piece.subarray(pieceStart, pieceStart + length), wholeStart);
      else piece.set(whole.subarray(wholeStart, wholeStart + length), pieceStart);
    }
    offset += size;
  });
}

/**
 * One copy per piece between it and its slab [outer, size, inner] of the whole: a scatter for Concat (piece
 * k is node input k), a gather for Split (piece k is node output k). Each program binds two tensors only,
 * and on CPU adapters all of them share the copy pipelines of their rank (see data-movement-affine.ts).
 */
function blockPrograms(ctx: BuildContext, opType: string, blocks: Blocks, direction: 'gather' | 'scatter', skip: (k: number) => boolean): KernelProgram[] {
  const { outer, inner, sizes, total } = blocks;
  const programs: KernelProgram[] = [];
  let offset = 0;
  sizes.forEach((size, k) => {
    const slab: AffineView = { outShape: [outer, size, inner], base: offset * inner, strides: [total * inner, inner, 1] };
    offset += size;
    if (size === 0 || skip(k)) return;
    const label = `${opType} (${ctx.node.name}) ${direction === 'gather' ? 'output' : 'input'} ${k}`;
    const program = direction === 'gather' ? viewProgram(label, slab, ctx.device, 0, k) : scatterProgram(label, slab, ctx.device, k, 0);
    if (program) programs.push(program);
  });
  return programs;
}

const concat: OpDefinition = {
  opType: 'Concat',
  infer: (ctx) => [concatLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { blocks, type } = concatLayout(ctx);
    const data = allocateHost(type.dtype, elementCount(type.shape));
    copyBlocks(blocks, data, inputs.map((t) => t!.data), 'gather');
    return [{ dtype: type.dtype, dims: type.shape, data }];
  },
  build: (ctx) => blockPrograms(ctx, 'Concat', concatLayout(ctx).blocks, 'scatter', () => false),
};

const split: OpDefinition = {
  opType: 'Split',
  infer: (ctx) => splitLayout(ctx).types,
  fold: (ctx, inputs) => {
    const { blocks, types } = splitLayout(ctx);
    const outputs = types.map((t) => ({ dtype: t.dtype, dims: t.shape, data: allocateHost(t.dtype, elementCount(t.shape)) }));
    copyBlocks(blocks, inputs[0]!.data, outputs.map((t) => t.data), 'scatter');
    return outputs;
  },
  build: (ctx) => blockPrograms(ctx, 'Split', splitLayout(ctx).blocks, 'gather', (k) => ctx.node.outputs[k] === ''),
};

export const concatOps: OpDefinition[] = [concat, split];
