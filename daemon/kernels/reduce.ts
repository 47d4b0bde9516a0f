/**
 * ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp and ArgMax/ArgMin: row kernels on the GPU,
 * and CPU folds for constant inputs (shape arithmetic, small constants).
 */
import { EdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, makeTensor, type Tensor } from '../graph/ir.ts';
import { wgslType, type WgslScalar } from './elementwise-expr.ts';
import { argConfig, reduceConfig, type ReduceConfig } from './reduce-axes.ts';
import { argMaxProgram, foldArg } from './reduce-arg.ts';
import { hostRowOffsets, ROW_REDUCTIONS, rowKernel, rowLayout, type RowReduction } from './reduce-rows.ts';
import { storageBinding } from './shader-util.ts';
import type { BuildContext, OpContext, OpDefinition } from './types.ts';

interface ReduceKind {
  opType: string;
  /** The opset from which axes is an input instead of an attribute. */
  axesInputSince: number;
  /** Whether integer inputs are accepted (those whose result stays integral). */
  integers: boolean;
  /** The GPU reductions and the WGSL expression of the result (using the reductions' names). */
  gpu(type: WgslScalar, length: number): { reductions: RowReduction[]; result: string };
  /** The CPU result for one row's values. */
  host(values: number[]): number;
}

const sumOf = (values: number[], f: (v: number) => number = (v) => v) => values.reduce((acc, v) => acc + f(v), 0);

const KINDS: ReduceKind[] = [
  {
    opType: 'ReduceSum', axesInputSince: 13, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.sum('s', t)], result: 's' }),
    host: (values) => sumOf(values),
  },
  {
    opType: 'ReduceMean', axesInputSince: 18, integers: true,
    gpu: (t, length) => ({ reductions: [ROW_REDUCTIONS.sum('s', t)], result: t === 'f32' ? `s / ${length}.0` : `s / ${Math.max(length, 1)}` }),
    host: (values) => sumOf(values) / values.length,
  },
  {
    opType: 'ReduceMax', axesInputSince: 18, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.max('m', t)], result: 'm' }),
    host: (values) => values.reduce((acc, v) => Math.max(acc, v), -Infinity),
  },
  {
    opType: 'ReduceMin', axesInputSince: 18, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.min('m', t)], result: 'm' }),
    host: (values) => values.reduce((acc, v) => Math.min(acc, v), Infinity),
  },
  {
    opType: 'ReduceProd', axesInputSince: 18, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.prod('p', t)], result: 'p' }),
    host: (values) => values.reduce((acc, v) => acc * v, 1),
  },
  {
    opType: 'ReduceL1', axesInputSince: 18, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.sum('s', t, (x) => `abs(${x})`)], result: 's' }),
    host: (values) => sumOf(values, Math.abs),
  },
  {
    opType: 'ReduceL2', axesInputSince: 18, integers: false,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.sum('s', t, (x) => `${x} * ${x}`)], result: 'sqrt(s)' }),
    host: (values) => Math.sqrt(sumOf(values, (v) => v * v)),
  },
  {
    opType: 'ReduceSumSquare', axesInputSince: 18, integers: true,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.sum('s', t, (x) => `${x} * ${x}`)], result: 's' }),
    host: (values) => sumOf(values, (v) => v * v),
  },
  {
    opType: 'ReduceLogSum', axesInputSince: 18, integers: false,
    gpu: (t) => ({ reductions: [ROW_REDUCTIONS.sum('s', t)], result: 'log(s)' }),
    host: (values) => Math.log(sumOf(values)),
  },
  {
    opType: 'ReduceLogSumExp', axesInputSince: 18, integers: false,
    gpu: (t) => ({
      reductions: [
        // an infinite maximum (or an empty row) must not turn x - max into NaN: shift by 0 instead. Tested on
        // the bits: drivers compiling with fast-math may fold comparisons with infinity away
        { ...ROW_REDUCTIONS.max('m', t), finish: (acc) => `select(${acc}, 0.0, (bitcast<u32>(${acc}) & 0x7fffffffu) == 0x7f800000u)` },
        ROW_REDUCTIONS.sum('s', t, (x) => `exp(${x} - m)`),
      ],
      result: 'log(s) + m',
    }),
    host: (values) => {
      const max = values.reduce((acc, v) => Math.max(acc, v), -Infinity);
      const shift = Number.isFinite(max) ? max : 0;
      return Math.log(sumOf(values, (v) => Math.exp(v - shift))) + shift;
    },
  },
];

function checkDType(ctx: OpContext, kind: ReduceKind, config: ReduceConfig): void {
  const { dtype } = config.input;
  if (isFloatDType(dtype)) return;
  if (dtype === 'bool' || !kind.integers) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `node '${ctx.node.name}' (${kind.opType}): input dtype ${dtype} is not supported`,
      { node: ctx.node.name, opType: kind.opType, dtype });
  }
}

function reduceOp(kind: ReduceKind): OpDefinition {
  return {
    opType: kind.opType,
    sinceVersion: 1,
    infer(ctx) {
      const config = reduceConfig(ctx, kind.axesInputSince);
      checkDType(ctx, kind, config);
      return [{ dtype: config.input.dtype, shape: config.outputShape }];
    },
    fold(ctx, inputs) {
      const config = reduceConfig(ctx, kind.axesInputSince);
      const x = inputs[0]!;
      const out = makeTensor(x.dtype, config.outputShape);
      const { bases, offsets } = hostRowOffsets(rowLayout(x.dims, config.axes));
      const integral = !isFloatDType(x.dtype);
      bases.forEach((base, row) => {
        const value = kind.host(offsets.map((offset) => x.data[base + offset]));
        out.data[row] = integral ? Math.trunc(value) : value;
      });
      return [out];
    },
    build(ctx: BuildContext) {
      const config = reduceConfig(ctx, kind.axesInputSince);
      const type = wgslType(config.input.dtype);
      if (elementCount(ctx.outputs[0].shape) === 0) return [];
      const layout = rowLayout(config.input.shape, config.axes);
      const { reductions, result } = kind.gpu(type, layout.length);
      return [rowKernel({
        label: `${kind.opType} ${layout.rows}x${layout.length} (${ctx.node.name})`,
        key: `${kind.opType} ${type}`,
        layout,
        type,
        declarations: `${storageBinding(0, 'x', type, 'read')}\n${storageBinding(1, 'y', type, 'read_write')}`,
        bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
        reductions,
        perRow: `y[row] = ${result};`,
        device: ctx.device,
      })];
    },
  };
}

function argOp(opType: 'ArgMax' | 'ArgMin'): OpDefinition {
  return {
    opType,
    sinceVersion: 1,
    infer(ctx) {
      const config = argConfig(ctx);
      if (config.input.dtype === 'bool') {
        throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `node '${ctx.node.name}' (${opType}): bool input is not supported`, { node: ctx.node.name });
      }
      return [{ dtype: 'int64', shape: config.outputShape }];
    },
    fold(ctx, inputs) {
      return [foldArg(opType, argConfig(ctx), inputs[0] as Tensor)];
    },
    build(ctx: BuildContext) {
      if (elementCount(ctx.outputs[0].shape) === 0) return [];
      return [argMaxProgram(ctx, opType, argConfig(ctx))];
    },
  };
}

export const ops: OpDefinition[] = [...KINDS.map(reduceOp), argOp('ArgMax'), argOp('ArgMin')];
