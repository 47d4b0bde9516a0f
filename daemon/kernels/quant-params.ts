/**
 * The scale / zero-point broadcast rules of ONNX QuantizeLinear and DequantizeLinear, shared by those ops, the
 * quantized matmul kernels and the dequantize fusion pass:
 *  - per tensor: a scalar (or one-element 1-D) scale;
 *  - per axis (opset 13+): a 1-D scale of length x.dims[axis];
 *  - per block (opset 21+, block_size > 0): a scale of x's rank, equal to x's dims except along `axis`, where
 *    it has ceil(x.dims[axis] / block_size) entries; element i uses the block floor(i_axis / block_size).
 * The zero point, when present, has the scale's shape.
 */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type DType, type TensorType } from '../graph/ir.ts';
import type { ShapeValues } from './shader-util.ts';
import type { OpContext } from './types.ts';

export type QuantLayoutKind = 'tensor' | 'axis' | 'block';

export interface QuantLayout {
  kind: QuantLayoutKind;
  /** The normalised axis (0 for per-tensor). */
  axis: number;
  /** 0 unless kind is 'block'. */
  blockSize: number;
  /** x.dims[axis] (1 for per-tensor). */
  axisSize: number;
  /** Entries of the scale along the axis: axisSize per axis, ceil(axisSize / blockSize) per block. */
  scaleAxisSize: number;
  /** Elements of x per step along the axis (product of the dims after it). */
  inner: number;
}

/** The integer range of each quantized dtype (saturation bounds of QuantizeLinear). */
export const QUANT_RANGES: Partial<Record<DType, readonly [number, number]>> = {
  int4: [-8, 7], uint4: [0, 15], int8: [-128, 127], uint8: [0, 255],
  int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1],
};

export function quantError(ctx: OpContext, code: 'EDGERUN_ERR_SHAPE' | 'EDGERUN_ERR_ONNX_INVALID' | 'EDGERUN_ERR_UNSUPPORTED_OP',
  message: string, extra: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError(code, `node '${ctx.node.name}' (${ctx.node.opType}): ${message}`, { node: ctx.node.name, opType: ctx.node.opType, ...extra });
}

export function requireInput(ctx: OpContext, index: number, what: string): TensorType {
  const type = ctx.inputs[index];
  if (!type) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `input ${index} (${what}) is required`, { input: index });
  return type;
}

export function requireFloatInput(ctx: OpContext, index: number, what: string): TensorType {
  const type = requireInput(ctx, index, what);
  if (!isFloatDType(type.dtype)) throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `${what} (input ${index}) must be a float tensor, got ${type.dtype}`, { input: index, dtype: type.dtype });
  return type;
}

/** The quantized dtypes each opset allows for DequantizeLinear's x / QuantizeLinear's y. */
export function allowedQuantTypes(opset: number): DType[] {
  if (opset >= 21) return ['int8', 'uint8', 'int16', 'uint16', 'int4', 'uint4', 'int32'];
  return ['int8', 'uint8', 'int32'];
}

/**
 * Validates the scale (and zero point) of a Q/DQ node against x's shape and works out the layout.
 * `axis`/`blockSize` default to the node's attributes.
 */
export function quantLayout(ctx: OpContext, xShape: readonly number[], scale: TensorType, zeroPoint: TensorType | null,
  options: { axis?: number; blockSize?: number } = {}): QuantLayout {
  const attrs = new Attributes(ctx.node);
  const rawAxis = options.axis ?? (ctx.opset >= 13 ? attrs.int('axis', 1) : 1);
  const blockSize = options.blockSize ?? (ctx.opset >= 21 ? attrs.int('block_size', 0) : 0);
  if (zeroPoint && zeroPoint.shape.join(',') !== scale.shape.join(',')) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `zero point dims [${zeroPoint.shape}] differ from scale dims [${scale.shape}]`,
      { scaleShape: scale.shape, zeroPointShape: zeroPoint.shape });
  }
  if (blockSize < 0) throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `block_size ${blockSize} is negative`, { blockSize });
  const scalar = scale.shape.length === 0 || (scale.shape.length === 1 && scale.shape[0] === 1 && blockSize === 0);
  if (scalar) return { kind: 'tensor', axis: 0, blockSize: 0, axisSize: 1, scaleAxisSize: 1, inner: elementCount(xShape) };
  const rank = xShape.length;
  if (rawAxis < -rank || rawAxis >= rank) throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `axis ${rawAxis} is out of range for x of rank ${rank}`, { axis: rawAxis });
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  const axisSize = xShape[axis];
  const inner = elementCount(xShape.slice(axis + 1));
  if (blockSize === 0) {
    if (ctx.opset < 13) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `scale must be a scalar before opset 13, got dims [${scale.shape}]`, { scaleShape: scale.shape });
    if (scale.shape.length !== 1 || scale.shape[0] !== axisSize) {
      throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `scale dims [${scale.shape}] fit neither per-tensor nor per-axis quantization of x [${xShape}] along axis ${axis} (expected [] or [${axisSize}])`,
        { scaleShape: scale.shape, xShape, axis });
    }
    return { kind: 'axis', axis, blockSize: 0, axisSize, scaleAxisSize: axisSize, inner };
  }
  const blocks = Math.ceil(axisSize / blockSize);
  const expected = xShape.map((d, i) => (i === axis ? blocks : d));
  if (scale.shape.join(',') !== expected.join(',')) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `scale dims [${scale.shape}] do not match block_size ${blockSize} along axis ${axis} of x [${xShape}] (expected [${expected}])`,
      { scaleShape: scale.shape, xShape, axis, blockSize });
  }
  return { kind: 'block', axis, blockSize, axisSize, scaleAxisSize: blocks, inner };
}

/** The scale index of x's flat element `i`. */
export function scaleIndexOf(layout: QuantLayout, i: number): number {
  switch (layout.kind) {
    case 'tensor': return 0;
    case 'axis': return Math.floor(i / layout.inner) % layout.axisSize;
    case 'block': {
      const outer = Math.floor(i / (layout.axisSize * layout.inner));
      const a = Math.floor(i / layout.inner) % layout.axisSize;
      return (outer * layout.scaleAxisSize + Math.floor(a / layout.blockSize)) * layout.inner + (i % layout.inner);
    }
  }
}

/**
 * The WGSL u32 expression of the scale index of flat element `i` (a u32 expression); the layout's sizes go
 * through `shapes` (baked, or read from the params buffer on CPU adapters).
 */
export function scaleIndexWgsl(layout: QuantLayout, i: string, shapes: ShapeValues): string {
  switch (layout.kind) {
    case 'tensor': return '0u';
    case 'axis': return `((${i} / ${shapes.value(layout.inner, 'INNER')}) % ${shapes.value(layout.axisSize, 'AXIS')})`;
    case 'block': {
      const inner = shapes.value(layout.inner, 'INNER');
      const axisSize = shapes.value(layout.axisSize, 'AXIS');
      const span = shapes.value(layout.axisSize * layout.inner, 'SPAN');
      const blocks = shapes.value(layout.scaleAxisSize, 'BLOCKS');
      const block = shapes.value(layout.blockSize, 'BLOCK');
      return `((((${i}) / ${span}) * ${blocks} + ((${i}) / ${inner}) % ${axisSize} / ${block}) * ${inner} + (${i}) % ${inner})`;
    }
  }
}

/** Round half to even, as QuantizeLinear rounds. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
