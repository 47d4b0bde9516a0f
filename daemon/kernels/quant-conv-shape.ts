/**
 * Validation of `edgerun.QConv` nodes: Conv(X, (W − zero_point) · scale, B) with W a constant of packed
 * integers, as the quantized-weight fusion pass writes it from DequantizeLinear(W) → Conv.
 *
 * Inputs: 0 X (float32, N×C×spatial), 1 W (int8 | uint8 | int4 | uint4 constant, [M, C/group, k…]),
 * 2 scale (float32 constant), 3 zero point (constant of W's dtype, or omitted), 4 B (float32 [M], optional).
 * The scale is one value (dims []), one per output channel (dims [M], axis 0), or one per block of
 * `block_size` input channels for every output channel and tap (dims [M, ceil((C/group)/block_size), k…], axis 1).
 * Attributes: those of Conv plus `axis` and `block_size`.
 */
import { Attributes } from '../graph/attributes.ts';
import type { DType, Tensor, TensorType } from '../graph/ir.ts';
import type { OpContext } from './types.ts';
import { forwardWindow, invalidError, shapeError, unsupportedError, type WindowGeometry } from './conv-geometry.ts';

export type QuantWeightDType = 'int8' | 'uint8' | 'int4' | 'uint4';

const WEIGHT_BITS: Record<QuantWeightDType, 4 | 8> = { int8: 8, uint8: 8, int4: 4, uint4: 4 };

/** How scales (and zero points) map to weights: per tensor, per output channel, or per block of input channels. */
export type QuantLayout = { kind: 'tensor' } | { kind: 'channel' } | { kind: 'block'; blockSize: number; blocks: number };

export interface QConvShape {
  x: TensorType;
  /** W's dims: [M, C/group, k…]. */
  w: number[];
  weightDType: QuantWeightDType;
  bits: 4 | 8;
  signed: boolean;
  group: number;
  geometry: WindowGeometry;
  output: number[];
  layout: QuantLayout;
  weights: Tensor;
  scale: Tensor;
  zeroPoint: Tensor | null;
  bias: Tensor | null;
}

function isQuantWeightDType(dtype: DType): dtype is QuantWeightDType {
  return dtype in WEIGHT_BITS;
}

/** Validates a QConv node (types, constants, attributes, geometry) and returns everything build needs. */
export function qconvShape(ctx: OpContext): QConvShape {
  const { node } = ctx;
  const [x, w, scale, zeroPoint, bias] = ctx.inputs;
  const names = node.inputs;
  if (!x || !w || !scale) throw invalidError(node, 'needs inputs X, W and scale');
  if (x.dtype !== 'float32') throw unsupportedError(node, `input X has dtype ${x.dtype}; QConv takes float32 activations`, { input: names[0] });
  if (!isQuantWeightDType(w.dtype)) throw unsupportedError(node, `W has dtype ${w.dtype}; QConv weights are int8, uint8, int4 or uint4`, { input: names[1] });
  if (x.shape.length < 3 || x.shape.length > 5) throw unsupportedError(node, `input X has rank ${x.shape.length}; QConv supports 1D, 2D and 3D (rank 3 to 5)`, { input: names[0] });
  if (w.shape.length !== x.shape.length) throw shapeError(node, `W has rank ${w.shape.length} but X has rank ${x.shape.length}`, { input: names[1] });
  const weights = ctx.constants[1];
  if (!weights) throw unsupportedError(node, 'W must be a constant: the kernel reads it packed', { input: names[1] });
  if (scale.dtype !== 'float32') throw shapeError(node, `scale has dtype ${scale.dtype}, expected float32`, { input: names[2] });
  const scaleValue = ctx.constants[2];
  if (!scaleValue) throw unsupportedError(node, 'scale must be a constant', { input: names[2] });

  const attributes = new Attributes(node);
  const group = attributes.int('group', 1);
  const [n, c] = x.shape;
  const [m, cg] = w.shape;
  if (group < 1 || c % group !== 0 || m % group !== 0) {
    throw shapeError(node, `group ${group} must divide X channels ${c} and W output channels ${m}`, { input: names[1] });
  }
  if (cg * group !== c) throw shapeError(node, `W expects ${cg * group} input channels (${cg} per group × ${group}), X has ${c}`, { input: names[1] });
  const kernel = w.shape.slice(2);
  if (attributes.has('kernel_shape')) {
    const declared = attributes.ints('kernel_shape');
    if (declared.join(',') !== kernel.join(',')) {
      throw shapeError(node, `kernel_shape [${declared}] does not match W's spatial dims [${kernel}]`, { attribute: 'kernel_shape' });
    }
  }
  if (kernel.some((k) => k < 1)) throw shapeError(node, `W has an empty kernel [${kernel}]`, { input: names[1] });

  const layout = quantLayout(ctx, w.shape, scale.shape);
  let zeroPointValue: Tensor | null = null;
  if (zeroPoint) {
    if (zeroPoint.dtype !== w.dtype) throw shapeError(node, `zero point has dtype ${zeroPoint.dtype} but W has ${w.dtype}`, { input: names[3] });
    if (zeroPoint.shape.join(',') !== scale.shape.join(',')) {
      throw shapeError(node, `zero point has shape [${zeroPoint.shape}] but scale has [${scale.shape}]`, { input: names[3] });
    }
    zeroPointValue = ctx.constants[3];
    if (!zeroPointValue) throw unsupportedError(node, 'the zero point must be a constant', { input: names[3] });
  }
  let biasValue: Tensor | null = null;
  if (bias) {
    if (bias.dtype !== 'float32') throw shapeError(node, `B has dtype ${bias.dtype}, expected float32`, { input: names[4] });
    if (bias.shape.length !== 1 || bias.shape[0] !== m) throw shapeError(node, `B has shape [${bias.shape}], expected [${m}]`, { input: names[4] });
    biasValue = ctx.constants[4];
    if (!biasValue) throw unsupportedError(node, 'B must be a constant: it is packed with the scales', { input: names[4] });
  }
  const geometry = forwardWindow(node, x.shape.slice(2), kernel);
  return {
    x, w: w.shape, weightDType: w.dtype, bits: WEIGHT_BITS[w.dtype], signed: w.dtype === 'int8' || w.dtype === 'int4',
    group, geometry, output: [n, m, ...geometry.output], layout,
    weights, scale: scaleValue, zeroPoint: zeroPointValue, bias: biasValue,
  };
}

function quantLayout(ctx: OpContext, w: number[], scale: number[]): QuantLayout {
  const { node } = ctx;
  const attributes = new Attributes(node);
  const blockSize = attributes.int('block_size', 0);
  const rank = w.length;
  const rawAxis = attributes.int('axis', 1);
  if (rawAxis < -rank || rawAxis >= rank) throw invalidError(node, `axis ${rawAxis} is out of range for W of rank ${rank}`, { attribute: 'axis' });
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  if (blockSize < 0) throw invalidError(node, `block_size ${blockSize} must not be negative`, { attribute: 'block_size' });
  if (blockSize === 0) {
    if (scale.length === 0 || (scale.length === 1 && scale[0] === 1)) return { kind: 'tensor' };
    if (scale.length === 1 && axis === 0 && scale[0] === w[0]) return { kind: 'channel' };
    if (scale.length === 1 && scale[0] === w[axis]) {
      throw unsupportedError(node, `per-axis scales along axis ${axis}: QConv supports per-tensor or per-output-channel (axis 0) scales, or blocks along axis 1`, { attribute: 'axis' });
    }
    throw shapeError(node, `scale has shape [${scale}]; expected [] or [${w[0]}] (axis 0)`, { input: node.inputs[2] });
  }
  if (axis !== 1) throw unsupportedError(node, `blocks along axis ${axis}: QConv supports blocks along the input channels (axis 1)`, { attribute: 'axis' });
  const blocks = Math.ceil(w[1] / blockSize);
  const expected = [w[0], blocks, ...w.slice(2)];
  if (scale.join(',') !== expected.join(',')) {
    throw shapeError(node, `scale has shape [${scale}]; blocks of ${blockSize} along axis 1 need [${expected}]`, { input: node.inputs[2] });
  }
  return { kind: 'block', blockSize, blocks };
}
