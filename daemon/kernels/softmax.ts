/**
 * Softmax and LogSoftmax, numerically stable (the row maximum is subtracted before exp).
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised over the flattened tail;
 * from opset 13 on only `axis` (default -1) is normalised.
 */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type TensorType } from '../graph/ir.ts';
import { normalizeAxes } from './reduce-axes.ts';
import { ROW_REDUCTIONS, rowKernel, rowLayout } from './reduce-rows.ts';
import { storageBinding } from './shader-util.ts';
import type { BuildContext, OpContext, OpDefinition } from './types.ts';

function checkedInput(ctx: OpContext): TensorType {
  const input = ctx.inputs[0];
  if (!input || ctx.inputs.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_SHAPE', `node '${ctx.node.name}' (${ctx.node.opType}): expects 1 input, got ${ctx.inputs.length}`, { node: ctx.node.name });
  }
  if (!isFloatDType(input.dtype)) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `node '${ctx.node.name}' (${ctx.node.opType}): input dtype ${input.dtype} is not a float type`,
      { node: ctx.node.name, dtype: input.dtype });
  }
  return input;
}

/** The normalised axes of the node (all axes from `axis` on before opset 13). */
export function softmaxAxes(ctx: OpContext, rank: number): number[] {
  const legacy = ctx.opset < 13;
  const axisAttribute = new Attributes(ctx.node).int('axis', legacy ? 1 : -1);
  if (rank === 0) {
    throw new EdgerunError('EDGERUN_ERR_SHAPE', `node '${ctx.node.name}' (${ctx.node.opType}): the input must have rank >= 1`, { node: ctx.node.name });
  }
  const [axis] = normalizeAxes(ctx, [axisAttribute], rank);
  return legacy ? Array.from({ length: rank - axis }, (_, i) => axis + i) : [axis];
}

function softmaxOp(opType: 'Softmax' | 'LogSoftmax'): OpDefinition {
  return {
    opType,
    sinceVersion: 1,
    infer(ctx) {
      const input = checkedInput(ctx);
      softmaxAxes(ctx, input.shape.length);
      return [{ dtype: input.dtype, shape: [...input.shape] }];
    },
    build(ctx: BuildContext) {
      const input = checkedInput(ctx);
      if (elementCount(input.shape) === 0) return [];
      const layout = rowLayout(input.shape, softmaxAxes(ctx, input.shape.length));
      const log = opType === 'LogSoftmax';
      const sum = ROW_REDUCTIONS.sum('s', 'f32', (x) => `exp(${x} - m)`);
      return [rowKernel({
        label: `${opType} ${layout.rows}x${layout.length} (${ctx.node.name})`,
        key: opType,
        layout,
        type: 'f32',
        declarations: `${storageBinding(0, 'x', 'f32', 'read')}\n${storageBinding(1, 'y', 'f32', 'read_write')}`,
        bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
        reductions: [
          ROW_REDUCTIONS.max('m', 'f32'),
          // LogSoftmax keeps log(sum); Softmax multiplies by the reciprocal instead of dividing per element
          { ...sum, finish: (acc) => (log ? `log(${acc})` : `1.0 / ${acc}`) },
        ],
        perElement: log ? 'y[offset] = v - m - s;' : 'y[offset] = exp(v - m) * s;',
        device: ctx.device,
      })];
    },
  };
}

export const ops: OpDefinition[] = [softmaxOp('Softmax'), softmaxOp('LogSoftmax')];
