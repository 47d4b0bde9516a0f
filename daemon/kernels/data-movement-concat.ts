/**
 * Concat and Split. Both see their tensors as [outer, axis, inner] blocks. One kernel covers a contiguous
 * range of the axis and picks the input (Concat) or output (Split) by the axis coordinate with baked
 * offsets; tensors are chunked only when there are more than the adapter's storage-buffer limit. When the
 * inner block is a multiple of 4 elements, invocations move vec4s.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, type Tensor, type TensorType } from '../graph/ir.ts';
import { constantInput, elementKernel, normalizeAxis, product, readBinding, requiredInput, writeBinding } from './data-movement-common.ts';
import { nodeError, requireSameDType } from './elementwise-dtypes.ts';
import { allocateHost } from './elementwise-program.ts';
import type { Binding, BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';

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
 * Kernels over the whole tensor's elements, one per chunk of pieces. `pieceBinding(k)` binds piece k (a
 * node input for Concat, an output for Split); the whole is bound last (Concat) or first (Split).
 */
function blockPrograms(ctx: BuildContext, opType: string, blocks: Blocks, direction: 'gather' | 'scatter', pieceBinding: (k: number) => Binding, skip: (k: number) => boolean): KernelProgram[] {
  const { outer, inner, sizes, total } = blocks;
  const width = inner % 4 === 0 ? 4 : 1;
  const unit = width === 4 ? 'vec4<u32>' : 'u32';
  const units = inner / width;
  const maxPieces = Math.max(1, ctx.device.limits.maxStorageBuffersPerShaderStage - 1);
  const offsets: number[] = [];
  sizes.reduce((acc, size) => { offsets.push(acc); return acc + size; }, 0);
  const live = sizes.map((_, k) => k).filter((k) => sizes[k] > 0 && !skip(k));
  const programs: KernelProgram[] = [];
  for (let c = 0; c < live.length; c += maxPieces) {
    const chunk = live.slice(c, c + maxPieces);
    const lo = offsets[chunk[0]];
    const last = chunk[chunk.length - 1];
    const hi = offsets[last] + sizes[last];
    const span = hi - lo;
    const declarations: string[] = [];
    const bindings: Binding[] = [];
    const wholeBinding = direction === 'gather' ? chunk.length : 0;
    chunk.forEach((k, j) => {
      const binding = direction === 'gather' ? j : j + 1;
      declarations.push(direction === 'gather' ? readBinding(binding, `piece${j}`, unit) : writeBinding(binding, `piece${j}`, unit));
    });
    declarations.splice(wholeBinding, 0, direction === 'gather' ? writeBinding(wholeBinding, 'whole', unit) : readBinding(wholeBinding, 'whole', unit));
    if (direction === 'scatter') bindings.push({ kind: 'input', index: 0 });
    chunk.forEach((k) => bindings.push(pieceBinding(k)));
    if (direction === 'gather') bindings.push({ kind: 'output', index: 0 });
    const body = [
      `let i = idx % ${units}u;`,
      `let t = idx / ${units}u;`,
      `let a = t % ${span}u + ${lo}u;`,
      `let o = t / ${span}u;`,
      `let w = (o * ${total}u + a) * ${units}u + i;`,
    ];
    chunk.forEach((k, j) => {
      const condition = j === chunk.length - 1 ? '' : `if (a < ${offsets[k] + sizes[k]}u) `;
      const prefix = j === 0 ? '' : '} else ';
      const pieceIndex = `(o * ${sizes[k]}u + a - ${offsets[k]}u) * ${units}u + i`;
      const copy = direction === 'gather' ? `whole[w] = piece${j}[${pieceIndex}];` : `piece${j}[${pieceIndex}] = whole[w];`;
      body.push(chunk.length === 1 ? copy : `${prefix}${condition}{`, ...(chunk.length === 1 ? [] : [`  ${copy}`]));
    });
    if (chunk.length > 1) body.push('}');
    const program = elementKernel({
      label: `${opType} (${ctx.node.name})${live.length > maxPieces ? ` part ${c / maxPieces + 1}` : ''}`,
      keyParts: [opType === 'Concat' ? 'concat' : 'split', `w${width}`, `outer${outer}`, `inner${inner}`, `total${total}`, `range${lo}-${hi}`, `pieces${chunk.map((k) => `${offsets[k]}+${sizes[k]}`).join(',')}`],
      total: outer * span * units,
      declarations,
      body,
      bindings,
      device: ctx.device,
    });
    if (program) programs.push(program);
  }
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
  build: (ctx) => blockPrograms(ctx, 'Concat', concatLayout(ctx).blocks, 'gather', (k) => ({ kind: 'input', index: k }), () => false),
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
  build: (ctx) => blockPrograms(ctx, 'Split', splitLayout(ctx).blocks, 'scatter', (k) => ({ kind: 'output', index: k }), (k) => ctx.node.outputs[k] === ''),
};

export const concatOps: OpDefinition[] = [concat, split];
