/**
 * LayerNormalization (with its optional Mean and InvStdDev outputs), InstanceNormalization and
 * RMSNormalization as row kernels. Statistics are two-pass in f32 (mean, then the mean of squared
 * deviations), which stays accurate where E[x²] - E[x]² would cancel.
 *
 * In models of older opsets the graph compiler creates LayerNormalization from the decomposed pattern
 * (ReduceMean, Sub, Pow, …) in the 'edgerun' domain, which the registry maps here with the latest semantics.
 */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type TensorType } from '../graph/ir.ts';
import { wgslLiteral } from './elementwise-expr.ts';
import { normalizeAxes } from './reduce-axes.ts';
import { ROW_REDUCTIONS, rowKernel, rowLayout, type RowReduction } from './reduce-rows.ts';
import { broadcastIndex, broadcastShapes, storageBinding, unravelIndex } from './shader-util.ts';
import type { Binding, BuildContext, OpContext, OpDefinition } from './types.ts';

function fail(ctx: OpContext, message: string, extra: Record<string, unknown> = {}): never {
  throw new EdgerunError('EDGERUN_ERR_SHAPE', `node '${ctx.node.name}' (${ctx.node.opType}): ${message}`, { node: ctx.node.name, opType: ctx.node.opType, ...extra });
}

function floatInput(ctx: OpContext, index: number, required: boolean): TensorType | null {
  const type = ctx.inputs[index] ?? null;
  if (!type) {
    if (required) fail(ctx, `input ${index} is required`, { input: index });
    return null;
  }
  if (!isFloatDType(type.dtype)) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `node '${ctx.node.name}' (${ctx.node.opType}): input ${index} is ${type.dtype}, expected a float type`,
      { node: ctx.node.name, input: index, dtype: type.dtype });
  }
  return type;
}

/** An operand (Scale, B) that must broadcast unidirectionally to `target`. */
function checkBroadcastTo(ctx: OpContext, name: string, shape: number[], target: number[]): void {
  const result = broadcastShapes(shape, target);
  if (shape.length > target.length || !result || result.join(',') !== target.join(',')) {
    fail(ctx, `${name} [${shape}] does not broadcast to the normalized shape [${target}]`, { shape, target });
  }
}

/** WGSL index of element j of the normalized shape in a broadcast operand (coordinates c* from `unravel`). */
function operandIndex(shape: number[], target: number[]): { expr: string; needsCoordinates: boolean } {
  const count = elementCount(shape);
  if (count === elementCount(target)) return { expr: 'j', needsCoordinates: false };
  if (count === 1) return { expr: '0u', needsCoordinates: false };
  return { expr: broadcastIndex(shape, target), needsCoordinates: true };
}

interface TrailingNorm {
  x: TensorType;
  axis: number;
  normalizedShape: number[];
  scale: TensorType | null;
  bias: TensorType | null;
  epsilon: number;
}

function trailingNorm(ctx: OpContext, maxInputs: number, scaleRequired: boolean): TrailingNorm {
  if (ctx.inputs.length < 1 || ctx.inputs.length > maxInputs) fail(ctx, `expects 1 to ${maxInputs} inputs, got ${ctx.inputs.length}`);
  const x = floatInput(ctx, 0, true)!;
  const attrs = new Attributes(ctx.node);
  if (x.shape.length === 0) fail(ctx, 'the input must have rank >= 1');
  const [axis] = normalizeAxes(ctx, [attrs.int('axis', -1)], x.shape.length);
  const normalizedShape = x.shape.slice(axis);
  const scale = floatInput(ctx, 1, scaleRequired);
  const bias = maxInputs > 2 ? floatInput(ctx, 2, false) : null;
  if (scale) checkBroadcastTo(ctx, 'Scale', scale.shape, normalizedShape);
  if (bias) checkBroadcastTo(ctx, 'B', bias.shape, normalizedShape);
  return { x, axis, normalizedShape, scale, bias, epsilon: attrs.float('epsilon', 1e-5) };
}

/** The per-element expression of scale and bias (each optional), plus the coordinate setup they need. */
function affine(norm: TrailingNorm, scaleName: string | null, biasName: string | null): { setup: string; apply: (v: string) => string } {
  const scale = norm.scale && scaleName ? operandIndex(norm.scale.shape, norm.normalizedShape) : null;
  const bias = norm.bias && biasName ? operandIndex(norm.bias.shape, norm.normalizedShape) : null;
  const setup = scale?.needsCoordinates || bias?.needsCoordinates ? unravelIndex(norm.normalizedShape, 'j', 'c') : '';
  return {
    setup,
    apply: (v) => {
      let e = v;
      if (scale) e = `${e} * ${scaleName}[${scale.expr}]`;
      if (bias) e = `${e} + ${biasName}[${bias.expr}]`;
      return e;
    },
  };
}

function meanAndRstd(length: number, epsilon: number, centred: boolean): RowReduction[] {
  const eps = wgslLiteral(epsilon, 'f32');
  const n = `${Math.max(length, 1)}.0`;
  if (!centred) {
    return [{ ...ROW_REDUCTIONS.sum('rstd', 'f32', (x) => `${x} * ${x}`), finish: (acc) => `inverseSqrt(${acc} / ${n} + ${eps})` }];
  }
  return [
    { ...ROW_REDUCTIONS.sum('mean', 'f32'), finish: (acc) => `${acc} / ${n}` },
    { ...ROW_REDUCTIONS.sum('rstd', 'f32', (x) => `(${x} - mean) * (${x} - mean)`), finish: (acc) => `inverseSqrt(${acc} / ${n} + ${eps})` },
  ];
}

function present(ctx: OpContext, output: number): boolean {
  return (ctx.node.outputs[output] ?? '') !== '';
}

const layerNormalization: OpDefinition = {
  opType: 'LayerNormalization',
  sinceVersion: 17,
  infer(ctx) {
    const norm = trailingNorm(ctx, 3, true);
    const statsShape = norm.x.shape.map((size, d) => (d < norm.axis ? size : 1));
    const stashType = new Attributes(ctx.node).int('stash_type', 1);
    if (stashType !== 1) {
      throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `node '${ctx.node.name}' (LayerNormalization): stash_type ${stashType} is not supported (only float32)`, { node: ctx.node.name });
    }
    const types: TensorType[] = [{ dtype: norm.x.dtype, shape: [...norm.x.shape] }];
    for (let i = 1; i < ctx.node.outputs.length; i++) types.push({ dtype: 'float32', shape: statsShape });
    return types;
  },
  build(ctx: BuildContext) {
    const norm = trailingNorm(ctx, 3, true);
    if (elementCount(norm.x.shape) === 0) return [];
    const layout = rowLayout(norm.x.shape, norm.normalizedShape.map((_, i) => norm.axis + i));
    const declarations = [storageBinding(0, 'x', 'f32', 'read'), storageBinding(1, 'scale', 'f32', 'read')];
    const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }];
    if (norm.bias) {
      declarations.push(storageBinding(bindings.length, 'bias', 'f32', 'read'));
      bindings.push({ kind: 'input', index: 2 });
    }
    declarations.push(storageBinding(bindings.length, 'y', 'f32', 'read_write'));
    bindings.push({ kind: 'output', index: 0 });
    const perRow: string[] = [];
    for (const [output, name, value] of [[1, 'mean_out', 'mean'], [2, 'rstd_out', 'rstd']] as const) {
      if (!present(ctx, output)) continue;
      declarations.push(storageBinding(bindings.length, name, 'f32', 'read_write'));
      bindings.push({ kind: 'output', index: output });
      perRow.push(`${name}[row] = ${value};`);
    }
    const { setup, apply } = affine(norm, 'scale', 'bias');
    return [rowKernel({
      label: `LayerNormalization ${layout.rows}x${layout.length} (${ctx.node.name})`,
      key: `LayerNormalization eps=${norm.epsilon} scale[${norm.scale!.shape}] bias[${norm.bias?.shape ?? 'none'}] norm[${norm.normalizedShape}] stats{${perRow.join('')}}`,
      layout,
      type: 'f32',
      declarations: declarations.join('\n'),
      bindings,
      reductions: meanAndRstd(layout.length, norm.epsilon, true),
      perRow: perRow.length ? perRow.join('\n    ') : undefined,
      perElement: `${setup}\n    y[offset] = ${apply('(v - mean) * rstd')};`,
      device: ctx.device,
    })];
  },
};

const rmsNormalization: OpDefinition = {
  opType: 'RMSNormalization',
  sinceVersion: 23,
  infer(ctx) {
    const norm = trailingNorm(ctx, 2, true);
    return [{ dtype: norm.x.dtype, shape: [...norm.x.shape] }];
  },
  build(ctx: BuildContext) {
    const norm = trailingNorm(ctx, 2, true);
    if (elementCount(norm.x.shape) === 0) return [];
    const layout = rowLayout(norm.x.shape, norm.normalizedShape.map((_, i) => norm.axis + i));
    const { setup, apply } = affine(norm, 'scale', null);
    return [rowKernel({
      label: `RMSNormalization ${layout.rows}x${layout.length} (${ctx.node.name})`,
      key: `RMSNormalization eps=${norm.epsilon} scale[${norm.scale!.shape}] norm[${norm.normalizedShape}]`,
      layout,
      type: 'f32',
      declarations: [storageBinding(0, 'x', 'f32', 'read'), storageBinding(1, 'scale', 'f32', 'read'), storageBinding(2, 'y', 'f32', 'read_write')].join('\n'),
      bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, { kind: 'output', index: 0 }],
      reductions: meanAndRstd(layout.length, norm.epsilon, false),
      perElement: `${setup}\n    y[offset] = ${apply('v * rstd')};`,
      device: ctx.device,
    })];
  },
};

function instanceNormShapes(ctx: OpContext): { x: TensorType; channels: number; epsilon: number } {
  if (ctx.inputs.length !== 3) fail(ctx, `expects 3 inputs, got ${ctx.inputs.length}`);
  const x = floatInput(ctx, 0, true)!;
  const scale = floatInput(ctx, 1, true)!;
  const bias = floatInput(ctx, 2, true)!;
  if (x.shape.length < 3) fail(ctx, `input must be [N, C, D1, ...], got [${x.shape}]`, { shape: x.shape });
  const channels = x.shape[1];
  for (const [name, t] of [['scale', scale], ['B', bias]] as const) {
    if (t.shape.length !== 1 || t.shape[0] !== channels) fail(ctx, `${name} must be [${channels}], got [${t.shape}]`, { shape: t.shape });
  }
  return { x, channels, epsilon: new Attributes(ctx.node).float('epsilon', 1e-5) };
}

const instanceNormalization: OpDefinition = {
  opType: 'InstanceNormalization',
  sinceVersion: 1,
  infer(ctx) {
    const { x } = instanceNormShapes(ctx);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  build(ctx: BuildContext) {
    const { x, channels, epsilon } = instanceNormShapes(ctx);
    if (elementCount(x.shape) === 0) return [];
    const layout = rowLayout(x.shape, x.shape.slice(2).map((_, i) => i + 2));
    return [rowKernel({
      label: `InstanceNormalization ${layout.rows}x${layout.length} (${ctx.node.name})`,
      key: `InstanceNormalization eps=${epsilon} c${channels}`,
      layout,
      type: 'f32',
      declarations: [
        storageBinding(0, 'x', 'f32', 'read'), storageBinding(1, 'scale', 'f32', 'read'),
        storageBinding(2, 'bias', 'f32', 'read'), storageBinding(3, 'y', 'f32', 'read_write'),
      ].join('\n'),
      bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, { kind: 'input', index: 2 }, { kind: 'output', index: 0 }],
      reductions: meanAndRstd(layout.length, epsilon, true),
      perElement: `y[offset] = (v - mean) * rstd * scale[row % ${channels}u] + bias[row % ${channels}u];`,
      device: ctx.device,
    })];
  },
};

export const ops: OpDefinition[] = [layerNormalization, rmsNormalization, instanceNormalization];
