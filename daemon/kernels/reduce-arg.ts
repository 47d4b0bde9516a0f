/** ArgMax / ArgMin: one invocation per output walks its row keeping the first (or last) extreme index. */
import { makeTensor, type Tensor } from '../graph/ir.ts';
import { wgslType } from './elementwise-expr.ts';
import type { ArgConfig } from './reduce-axes.ts';
import { chooseRowStrategy, elementOffset, hostRowOffsets, layoutKey, rowBase, rowLayout } from './reduce-rows.ts';
import { storageBinding } from './shader-util.ts';
import type { BuildContext, KernelProgram } from './types.ts';

/** The comparison that makes a candidate replace the current best (ties replace only with select_last_index). */
function better(opType: 'ArgMax' | 'ArgMin', selectLast: boolean): string {
  if (opType === 'ArgMax') return selectLast ? '>=' : '>';
  return selectLast ? '<=' : '<';
}

export function argMaxProgram(ctx: BuildContext, opType: 'ArgMax' | 'ArgMin', config: ArgConfig): KernelProgram {
  const layout = rowLayout(config.input.shape, [config.axis]);
  const type = wgslType(config.input.dtype);
  // always one invocation per row: the index bookkeeping makes a tree reduction not worth it here
  const size = chooseRowStrategy(layout.rows, 1, ctx.device).workgroupSize;
  const groups = Math.ceil(layout.rows / size);
  const x = Math.min(groups, ctx.device.limits.maxComputeWorkgroupsPerDimension);
  const op = better(opType, config.selectLastIndex);
  const code = `${storageBinding(0, 'x', type, 'read')}
${storageBinding(1, 'y', 'i32', 'read_write')}

@compute @workgroup_size(${size}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * ${x * size}u;
  if (row >= ${layout.rows}u) { return; }
  let base = ${rowBase(layout, 'row')};
  var best = x[base];
  var bestIndex = 0u;
  for (var j = 1u; j < ${layout.length}u; j = j + 1u) {
    let v = x[base + ${elementOffset(layout, 'j')}];
    if (v ${op} best) {
      best = v;
      bestIndex = j;
    }
  }
  y[row] = i32(bestIndex);
}
`;
  return {
    label: `${opType} ${layout.rows}x${layout.length} (${ctx.node.name})`,
    key: `${opType} ${type} ${op} ${layoutKey(layout)} wg${size}`,
    code,
    workgroups: [x, Math.ceil(groups / x), 1],
    bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
  };
}

export function foldArg(opType: 'ArgMax' | 'ArgMin', config: ArgConfig, input: Tensor): Tensor {
  const { bases, offsets } = hostRowOffsets(rowLayout(input.dims, [config.axis]));
  const out = makeTensor('int64', config.outputShape);
  const sign = opType === 'ArgMax' ? 1 : -1;
  bases.forEach((base, row) => {
    let best = sign * input.data[base];
    let bestIndex = 0;
    for (let j = 1; j < offsets.length; j++) {
      const v = sign * input.data[base + offsets[j]];
      if (v > best || (config.selectLastIndex && v === best)) {
        best = v;
        bestIndex = j;
      }
    }
    out.data[row] = bestIndex;
  });
  return out;
}
