/** Transpose, and DepthToSpace / SpaceToDepth (a reshape, a 6-D transpose and a reshape): affine views. */
import { Attributes } from '../graph/attributes.ts';
import { viewOp, type AffineView } from './data-movement-affine.ts';
import { requiredInput } from './data-movement-common.ts';
import { nodeError } from './elementwise-dtypes.ts';
import { stridesOf } from './shader-util.ts';
import type { OpContext, OpDefinition } from './types.ts';

const inputOf = (ctx: OpContext) => requiredInput(ctx, 0);

export function transposeView(shape: readonly number[], perm: readonly number[]): AffineView {
  const strides = stridesOf(shape);
  return { outShape: perm.map((p) => shape[p]), base: 0, strides: perm.map((p) => strides[p]) };
}

function permutation(ctx: OpContext): number[] {
  const rank = inputOf(ctx).shape.length;
  const a = new Attributes(ctx.node);
  const perm = a.has('perm') ? a.ints('perm') : Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const sorted = [...perm].sort((x, y) => x - y);
  if (perm.length !== rank || sorted.some((p, i) => p !== i)) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `perm [${perm}] is not a permutation of the ${rank} axes of the input`, { perm });
  }
  return perm;
}

const transpose = viewOp('Transpose', (ctx) => {
  const view = transposeView(inputOf(ctx).shape, permutation(ctx));
  return { view, shape: view.outShape };
});

function blockSize(ctx: OpContext): number {
  const size = new Attributes(ctx.node).int('blocksize');
  if (size < 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `blocksize ${size} must be positive`);
  return size;
}

function nchw(ctx: OpContext): [number, number, number, number] {
  const shape = inputOf(ctx).shape;
  if (shape.length !== 4) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input must be 4-D (NCHW), got [${shape}]`);
  return shape as [number, number, number, number];
}

const depthToSpace = viewOp('DepthToSpace', (ctx) => {
  const [n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx);
  if (c % (b * b) !== 0) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `channels ${c} are not divisible by blocksize² ${b * b}`);
  const mode = new Attributes(ctx.node).string('mode', 'DCR');
  if (mode !== 'DCR' && mode !== 'CRD') throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `unknown mode '${mode}'`);
  const view = mode === 'DCR'
    ? transposeView([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2])
    : transposeView([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]);
  return { view, shape: [n, c / (b * b), h * b, w * b] };
});

const spaceToDepth = viewOp('SpaceToDepth', (ctx) => {
  const [n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx);
  if (h % b !== 0 || w % b !== 0) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `spatial dims ${h}×${w} are not divisible by blocksize ${b}`);
  const view = transposeView([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]);
  return { view, shape: [n, c * b * b, h / b, w / b] };
});

export const transposeOps: OpDefinition[] = [transpose, depthToSpace, spaceToDepth];
